"""Generic I/O: scenes, class maps, COG writing, staging, band statistics, vector formats,
styles, report files and remote storage. No feature's own files live here."""

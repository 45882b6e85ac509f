"""Acquisition dates of scenes and maps: from metadata or the file name, never the file time.

Order: a date given by the user; the tags of the raster (geoseg's own ``GEOSEG_DATE``, then
acquisition fields that GDAL and sensor formats use: ``ACQUISITIONDATETIME`` in the IMAGERY
domain, ``ACQUISITION_DATE``, ``DATE_ACQUIRED``, ``DATETIME`` as STAC writes it); a date in
the file name (naip_2009-08-18, S2_20200831, LC08_..._20150818_...); and last
``TIFFTAG_DATETIME``, which many writers set to the time the file was written, not taken.
None when nothing says: an empty date is honest, a file's modification time is not.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from geoseg.errors import GeoSegError

_DATE = re.compile(r"(?<!\d)(\d{4})[-_:]?(\d{2})[-_:]?(\d{2})(?!\d)")
ACQUISITION_TAGS = ("ACQUISITIONDATETIME", "ACQUISITION_DATE", "DATE_ACQUIRED", "DATETIME")


def parse_date(text: str | None) -> str | None:
    """The first valid calendar date (YYYY-MM-DD, YYYYMMDD, YYYY:MM:DD, ...) in ``text``."""
    for m in _DATE.finditer(text or ""):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            continue
    return None


def check_date(text: str) -> str:
    """A date the user gave, as YYYY-MM-DD, or a one-line error."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise GeoSegError(f"date {text!r} is not YYYY-MM-DD") from None


def date_from_tags(tags: dict[str, str], *, last_resort: bool = True) -> str | None:
    """The acquisition date in a raster's tags (any case); ``TIFFTAG_DATETIME`` only when
    ``last_resort``."""
    upper = {k.upper(): v for k, v in tags.items()}
    for key in ("GEOSEG_DATE", *ACQUISITION_TAGS) + (("TIFFTAG_DATETIME",) if last_resort else ()):
        d = parse_date(upper.get(key))
        if d:
            return d
    return None


def raster_tags(path: str | Path) -> dict[str, str]:
    """A raster's default and IMAGERY-domain tags ({} where it cannot be opened)."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            return {**src.tags(ns="IMAGERY"), **src.tags()}
    except rasterio.errors.RasterioIOError:
        return {}


def acquisition_date(paths, explicit: str | None = None, *, name_first: bool = False) -> str | None:
    """The acquisition date of a scene (one raster, or band files stacked; the first that
    says wins). ``name_first``: a date in the file name before the tags (for maps named by
    date, as the change command expects)."""
    if explicit:
        return check_date(explicit)
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    tags = [raster_tags(p) for p in paths]
    names = [parse_date(Path(p).name) for p in paths]
    ordered = (names, [date_from_tags(t, last_resort=False) for t in tags])
    for found in ordered[::-1] if not name_first else ordered:
        d = next((x for x in found if x), None)
        if d:
            return d
    return next((d for t in tags if (d := date_from_tags(t))), None)

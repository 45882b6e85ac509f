"""Change detection between two dates: from-to raster, mask, transitions, polygons, its
accuracy and report files (``geoseg change``, :func:`geoseg.change.change.change`)."""

"""Polygons from class rasters: block-wise polygonization, exact seam merge, sieve, simplify
(``geoseg vectorize``, :func:`geoseg.vector.vectorize.vectorize`)."""

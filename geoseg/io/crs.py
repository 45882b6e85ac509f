"""CRS with an authority code where the input's definition matches one.

Many scenes carry their CRS as an unnamed WKT (``PROJCS["unnamed", ...]``, e.g. the NC Landsat
scene, in EPSG:32119's parameters on an "unknown" GRS80 datum). GDAL 3.6 and QGIS 3.22 then
show "unnamed" and no EPSG code. Products are written with the EPSG definition instead, but
only where GDAL's own matcher proposes one (``CRS.to_epsg``) and PROJ confirms that swapping
the definitions moves no point of the code's area of use by more than a millimetre. The check
is ours because neither GDAL nor PROJ offers "identify, then prove the identification exact".
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rasterio.crs import CRS

TOLERANCE_M = 1e-3  # in the CRS's linear unit (metres or feet); degrees get 1e-8


def with_authority(crs):
    """``crs`` as the EPSG definition it matches, else unchanged (``None`` stays ``None``)."""
    if crs is None:
        return None
    rio = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    code = _match(rio.to_wkt())
    return CRS.from_epsg(code) if code else rio


def wkt_with_authority(crs: str | None) -> str | None:
    """The same for vector layers: a WKT (or ``AUTH:CODE``) as the EPSG definition's WKT where
    it matches one, else unchanged."""
    if not crs:
        return crs
    try:
        wkt = CRS.from_user_input(crs).to_wkt()
    except Exception:  # rasterio's CRSError; the writer reports a CRS it cannot use
        return crs
    code = _match(wkt)
    return CRS.from_epsg(code).to_wkt() if code else crs


@lru_cache(maxsize=64)
def _match(wkt: str) -> int | None:
    import pyproj
    from pyproj.exceptions import CRSError, ProjError

    try:
        rio = CRS.from_wkt(wkt)
        if rio.to_authority() and rio.to_authority()[0] == "EPSG" and "AUTHORITY" in wkt[-40:]:
            return None  # already carries its code: leave it as written
        code = rio.to_epsg()
        if code is None:
            return None
        ours, theirs = pyproj.CRS.from_wkt(wkt), pyproj.CRS.from_epsg(code)
        if ours.is_geographic != theirs.is_geographic or ours.is_projected != theirs.is_projected:
            return None
        area = theirs.area_of_use
        if area is None:
            return None
        lon, lat = np.meshgrid(  # inside the area: its edges may wrap or hit a pole
            np.linspace(area.west, area.east, 11)[1:-1],
            np.linspace(area.south, area.north, 11)[1:-1],
        )
        lonlat = pyproj.CRS.from_epsg(4326)
        a = pyproj.Transformer.from_crs(lonlat, ours, always_xy=True)
        b = pyproj.Transformer.from_crs(lonlat, theirs, always_xy=True)
        xa, ya = a.transform(lon.ravel(), lat.ravel())
        xb, yb = b.transform(lon.ravel(), lat.ravel())
    except (CRSError, ProjError, ValueError):
        return None
    d = np.hypot(np.subtract(xa, xb), np.subtract(ya, yb))
    tol = 1e-8 if theirs.is_geographic else TOLERANCE_M
    return code if np.all(np.isfinite(d)) and float(d.max()) <= tol else None

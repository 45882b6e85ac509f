"""An xarray (band, y, x) array as the engine's scene: georeferencing and the slab one block
reads, mirrored beyond the edges exactly as :meth:`geoseg.io.scene.Scene.read` mirrors a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

from geoseg.core.grid import Window, symmetric_index
from geoseg.errors import GeoSegError

BAND_DIMS = ("band", "bands", "channel")


def as_bands(data):
    """``data`` as a (band, y, x) DataArray, or a one-line error."""
    import xarray as xr

    if not isinstance(data, xr.DataArray):
        raise GeoSegError(
            f"geoseg.xarray.predict takes an xarray.DataArray, got {type(data).__name__}: "
            "open the scene with rioxarray.open_rasterio, stackstac or odc-stac"
        )
    if data.ndim == 2:
        data = data.expand_dims("band")
    if data.ndim != 3:
        raise GeoSegError(f"the scene must be (band, y, x), got dims {data.dims}")
    band = next((d for d in data.dims if d in BAND_DIMS), data.dims[0])
    y = next((d for d in data.dims if d in ("y", "lat", "latitude", "northing")), None)
    x = next((d for d in data.dims if d in ("x", "lon", "longitude", "easting")), None)
    if y is None or x is None:
        y, x = (d for d in data.dims if d != band)
    return data.transpose(band, y, x)


def georeference(data) -> tuple[object, Affine | None]:
    """(CRS or None, transform or None) from rioxarray's ``.rio`` if it knows them, else from
    regularly spaced x/y coordinates (pixel centres) and a ``crs``/``spatial_ref`` attribute."""
    crs = transform = None
    try:
        import rioxarray  # noqa: F401 - registers .rio

        crs = data.rio.crs
        if data.rio.x_dim in data.coords and data.rio.y_dim in data.coords:
            transform = data.rio.transform(recalc=True)
    except Exception:  # rioxarray missing, or dims it does not recognise
        pass
    if transform is None:
        _, ydim, xdim = data.dims
        if xdim in data.coords and ydim in data.coords and data.sizes[xdim] > 1:
            xs, ys = data[xdim].values.astype(float), data[ydim].values.astype(float)
            dx, dy = np.diff(xs), np.diff(ys)
            if not (np.allclose(dx, dx[0]) and np.allclose(dy, dy[0])):
                raise GeoSegError("the scene's x/y coordinates are not regularly spaced")
            transform = Affine(dx[0], 0, xs[0] - dx[0] / 2, 0, dy[0], ys[0] - dy[0] / 2)
    if crs is None:
        from rasterio.crs import CRS

        text = data.attrs.get("crs") or data.attrs.get("spatial_ref")
        crs = CRS.from_user_input(text) if text else None
    return crs, transform


def nodata_of(data, nodata: float | None) -> float | None:
    """The nodata value: the argument, else rioxarray's, else ``_FillValue`` / ``nodata``."""
    if nodata is not None:
        return nodata
    try:
        import rioxarray  # noqa: F401

        nd = data.rio.nodata
        if nd is not None:
            return float(nd)
    except Exception:
        pass
    for key in ("_FillValue", "nodata", "nodatavals"):
        v = data.attrs.get(key, data.encoding.get(key))
        if isinstance(v, list | tuple):
            v = v[0] if v else None
        if v is not None:
            return float(v)
    return None


def source_span(window: Window, height: int, width: int) -> tuple[int, int, int, int]:
    """Rows r0:r1 and columns c0:c1 of the scene that ``window`` reads, mirrored included."""
    rows = symmetric_index(np.arange(window.row, window.row_end), height)
    cols = symmetric_index(np.arange(window.col, window.col_end), width)
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


@dataclass
class ArraySlab:
    """The scene pixels one block reads (all bands, rows r0.., columns c0..), read like a
    file: float32 values and validity (no band equal to nodata, nothing NaN)."""

    values: np.ndarray  # (bands, h, w), the scene's dtype
    origin: tuple[int, int]  # (r0, c0) in the scene
    height: int  # the scene's
    width: int
    nodata: float | None

    def read(self, window: Window, bands: list[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = symmetric_index(np.arange(window.row, window.row_end), self.height)
        cols = symmetric_index(np.arange(window.col, window.col_end), self.width)
        ri, ci = rows - self.origin[0], cols - self.origin[1]
        sel = self.values[[b - 1 for b in bands]][:, ri][:, :, ci]
        data = sel.astype(np.float32)
        valid = np.ones(data.shape[1:], dtype=bool)
        if self.nodata is not None:
            nd = np.float32(self.nodata)
            valid &= ~(np.isnan(data).any(axis=0) if np.isnan(nd) else (data == nd).any(axis=0))
        if np.dtype(self.values.dtype).kind == "f":
            valid &= np.isfinite(data).all(axis=0)  # NaN and +-Inf alike are nodata
        return data, valid

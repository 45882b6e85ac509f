"""geoseg: distributed, seam-free land-cover segmentation of large scenes on Dask.

One package per stage of the data flow (ARCHITECTURE.md is the map): ``geoseg.core`` (tile
grid, blending, classes, metrics) imports neither dask nor torch; the engine and model packages
do, and are imported lazily by the functions below.
"""

from __future__ import annotations

from geoseg.version import __version__


def predict(*args, **kwargs):
    """Predict a scene into a class COG; see :func:`geoseg.engine.predict.predict`."""
    from geoseg.engine.predict import predict as _predict

    return _predict(*args, **kwargs)


def open(path, **kwargs):  # noqa: A001 - geoseg.open, as xarray.open_dataset or rasterio.open
    """A class map (COG or Zarr store) as a DataArray with its class list; see
    :func:`geoseg.xarray.open.open_map`."""
    from geoseg.xarray.open import open_map

    return open_map(path, **kwargs)


__all__ = ["__version__", "open", "predict"]

"""The Pangeo path: xarray (and dask) in and out.

``geoseg.xarray.predict(data, model)``: a (band, y, x) DataArray to a lazy class DataArray;
``geoseg.xarray.open(path)``: a class map (COG or Zarr) as a DataArray with its classes;
``geoseg.xarray.instances(classes, things=[...])``: its objects' scene-wide ids, lazily.
"""

from geoseg.xarray.instances import instances
from geoseg.xarray.open import open_map as open
from geoseg.xarray.predict import predict

__all__ = ["instances", "open", "predict"]

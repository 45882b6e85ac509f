"""geoseg: distributed, seam-free land-cover segmentation of large scenes on Dask.

One package per stage of the data flow (ARCHITECTURE.md is the map): ``geoseg.core`` (tile
grid, blending, classes, metrics) imports neither dask nor torch; the engine and model packages
do, and are imported lazily by the function below.
"""

from __future__ import annotations

from geoseg.version import __version__


def predict(*args, **kwargs):
    """Predict a scene into a class COG; see :func:`geoseg.engine.predict.predict`."""
    from geoseg.engine.predict import predict as _predict

    return _predict(*args, **kwargs)


__all__ = ["__version__", "predict"]

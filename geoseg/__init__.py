"""geoseg: distributed, seam-free land-cover segmentation of large scenes on Dask.

The core modules (grid, blend, metrics, classes, synth, io) import neither dask nor torch;
the engine and model packages do, and are imported lazily by the functions below.
"""

from __future__ import annotations

__version__ = "0.1.0"


def predict(*args, **kwargs):
    """Predict a scene into a class COG; see :func:`geoseg.engine.predict.predict`."""
    from geoseg.engine.predict import predict as _predict

    return _predict(*args, **kwargs)


__all__ = ["__version__", "predict"]

"""Dask worker preload: import the model stack when a local worker starts.

Importing torch and segmentation-models-pytorch takes seconds; done at worker start-up it is
paid once per cluster instead of inside the first task of every job's first block.
"""

import segmentation_models_pytorch  # noqa: F401
import torch  # noqa: F401

import geoseg.engine.blocks  # noqa: F401

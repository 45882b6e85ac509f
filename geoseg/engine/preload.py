"""Dask worker preload: import the model stack when a local worker starts.

Importing torch takes seconds; done at worker start-up it is paid once per cluster instead of
inside the first task of every job's first block. segmentation-models-pytorch (another ~2.5 s
with timm) is left to the first block that builds a torch model: with the default OpenVINO
runtime and its cached conversion, a worker never needs it.
"""

import contextlib

import torch  # noqa: F401

import geoseg.engine.blocks  # noqa: F401
import geoseg.model.runner  # noqa: F401

with contextlib.suppress(Exception):  # optional; the runtime choice reports its absence
    import openvino  # noqa: F401

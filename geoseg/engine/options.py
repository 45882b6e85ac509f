"""What a prediction can be asked for, declared once (see :mod:`geoseg.core.options`).

``geoseg predict``'s options, the workflow's ``predict`` section, the keyword arguments of
:func:`geoseg.predict` and :func:`geoseg.xarray.predict`, the job key and the tags all come
from :class:`PredictOptions`. The allowed values are those of the code that honours them.
"""

from __future__ import annotations

from geoseg.core.options import Options, choice, option
from geoseg.core.radiometry import NORMALIZE_MODES
from geoseg.model.runtime import PRECISIONS, RUNTIMES
from geoseg.model.tta import TTA_VIEWS

DEFAULT_BLOCK = 2048


class PredictOptions(Options):
    block: int = option(
        DEFAULT_BLOCK,
        "Output block size in pixels (rounded to a whole number of tile strides); one Dask "
        "task per block.",
        key="never",  # the job key holds the resolved tiles per block
        ge=64,
    )
    tile: int | None = option(
        None, "Tile size (default: the bundle's).", key="never", ge=32
    )  # resolved into the key
    overlap: int | None = option(None, "Tile overlap (default: the bundle's).", key="never", ge=0)
    probabilities: bool = option(False, "Also write per-class probability and confidence COGs.")
    batch_size: int | None = option(
        None, "Tiles per model call (default: 1 on CPU, 16 on GPU).", ge=1
    )
    torch_threads: int = option(
        1,
        "Model threads per CPU worker (1 keeps results bit-identical for any worker count).",
        ge=1,
    )
    tta: choice(TTA_VIEWS) = option(
        "none",
        "Test-time augmentation: none, flips (4 views, 4x the model time) or d4 (8 views).",
        key="changed",  # staging made before TTA existed stays valid
        label="test-time augmentation",
        tag="GEOSEG_TTA",
    )
    precision: choice(PRECISIONS) = option(
        "auto",
        "Model arithmetic: auto (bf16 on GPUs and on CPUs with AMX or AVX-512 BF16, else "
        "fp32), fp32, bf16 or fp16 (GPUs).",
        label="precision",
    )
    runtime: choice(RUNTIMES) = option(
        "auto",
        "Model runtime: auto (OpenVINO on CPUs where installed, else torch), torch or "
        "openvino (CPU; converted once and cached under ~/.cache/geoseg/openvino).",
        label="runtime",
    )
    normalize: choice(NORMALIZE_MODES) = option(
        "auto",
        "Band radiometry: auto (bundle where the scene's band quantiles are near the training "
        "ones, else scene; says which and why), bundle (the training mean/std as they are), "
        "scene (the scene's robust band statistics moved onto the training ones: another date "
        "or sensor) or match (band quantiles matched to the training quantiles).",
        key="never",  # the key holds the band mapping it comes to
    )
    strict: bool = option(
        False,
        "Refuse a scene unlike the model's training scenes (pixel size, data type, band "
        "order) instead of warning.",
        key="never",
    )
    cog_level: int = option(
        6,
        "DEFLATE level of the COG outputs (1-9): 6, GDAL's default, makes the smallest files; "
        "5 assembles the COG 1.6-1.8x faster for files about 16 % larger (BENCHMARKS.md). A "
        ".zarr output is not affected.",
        key="never",  # how the output is compressed, not what it holds
        ge=1,
        le=9,
    )
    device: str = option(
        "auto", "Where the model runs: auto (cuda where a worker has it), cpu or cuda.", cli=False
    )

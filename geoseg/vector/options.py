"""What ``geoseg vectorize`` can be asked for, declared once (:mod:`geoseg.core.options`)."""

from __future__ import annotations

from typing import Literal

from geoseg.core.options import Options, option

DEFAULT_BLOCK = 5000  # smooth land cover: ~1 s per block; blocks of 2500 px took 0.2-0.3 s


class VectorizeOptions(Options):
    mmu: float = option(
        0.0,
        "Minimum mapping unit in hectares: smaller regions join their neighbours.",
        ge=0,
        allow_inf_nan=False,
    )
    simplify: float = option(
        0.0,
        "Simplification tolerance in metres (shared edges stay shared).",
        ge=0,
        allow_inf_nan=False,
    )
    connectivity: Literal[4, 8] = option(4, "Pixel connectivity of a polygon: 4 or 8.")
    block: int = option(
        DEFAULT_BLOCK, "Largest block side in pixels; one Dask task per block.", ge=64
    )

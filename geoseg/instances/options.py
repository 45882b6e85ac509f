"""What ``geoseg instances`` can be asked for, declared once (:mod:`geoseg.core.options`)."""

from __future__ import annotations

from typing import Literal

from geoseg.core.options import Options, option

DEFAULT_BLOCK = 2048


class InstanceOptions(Options):
    things: list[str] | None = option(
        None,
        "The countable classes, by name or id (default: those the class list marks 'thing').",
    )
    connectivity: Literal[4, 8] = option(
        4, "Pixels of one object touch by an edge (4) or also by a corner (8)."
    )
    min_pixels: int = option(
        1,
        "Smallest instance in pixels: smaller objects (speckle) keep their class but get no "
        "id, decided on whole objects.",
        ge=1,
    )
    split: bool = option(
        True,
        "Split touching objects along the model's border head where the map has one "
        "(<map>_boundary.tif beside it, written by a bundle with a boundary head).",
        key="changed",
    )
    border_threshold: float = option(
        0.5, "Border probability from which a pixel separates objects.", key="changed", gt=0, lt=1
    )
    grow: int = option(
        3,
        "Pixels each object grows back into the border around it (of its own class).",
        key="changed",
        ge=0,
        le=16,
    )
    block: int = option(
        DEFAULT_BLOCK, "Block size in pixels; one Dask task per block.", key="never", ge=64
    )

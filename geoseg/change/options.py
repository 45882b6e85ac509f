"""What ``geoseg change`` can be asked for, declared once (:mod:`geoseg.core.options`).

The two dates (class maps or scenes), their probabilities and acquisition dates, the model,
the class list, the reference change and its field are the inputs: arguments of
:func:`geoseg.change.change.change`.
"""

from __future__ import annotations

from geoseg.core.options import Options, choice, option
from geoseg.core.radiometry import NORMALIZE_MODES

DESIGNS = ("auto", "stratified", "none")
# with --model: each date as geoseg predict --normalize, or pif (geoseg.harmonize.pif)
CHANGE_NORMALIZE = (*NORMALIZE_MODES, "pif")


class ChangeOptions(Options):
    threshold: float = option(
        0.7,
        "Confidence gate: a change needs both dates' "
        "largest class probability >= this; else 'uncertain'.",
        ge=0,
        le=1,
        allow_inf_nan=False,
    )
    mmu: float = option(
        0.0,
        "Minimum mapping unit of the change polygons, hectares.",
        ge=0,
        allow_inf_nan=False,
    )
    grid: str | None = option(None, "Output grid: before (default), after, or a raster.")
    design: choice(DESIGNS) = option("auto", "Reference points: auto, stratified or none.")
    block: int = option(2048, "Block size in pixels; one Dask task per block.", ge=64)
    normalize: choice(CHANGE_NORMALIZE) = option(
        "bundle",
        "With --model: each date's band radiometry, as geoseg predict --normalize "
        "(bundle, scene or match).",
    )
    adapt: bool = option(
        False,
        "With --model: fit the bundle to the later date first (geoseg adapt: "
        "self-training on its confident pixels) and predict that date with it.",
    )

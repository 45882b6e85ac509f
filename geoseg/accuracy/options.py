"""What ``geoseg evaluate`` can be asked for, declared once (:mod:`geoseg.core.options`).

The map, the reference and the reference's own properties (its class field, layer and
``--class-map``) are the inputs: arguments of :func:`geoseg.accuracy.evaluate.evaluate`.
"""

from __future__ import annotations

from geoseg.core.options import Options, choice, option

DESIGNS = ("auto", "stratified", "none")


class EvaluateOptions(Options):
    design: choice(DESIGNS) = option(
        "auto",
        "Points: auto (Olofsson stratified estimators "
        "for a 'geoseg sample' set), stratified, or none.",
    )
    block: int = option(2048, "Block size in pixels; one Dask task per block.", ge=64)

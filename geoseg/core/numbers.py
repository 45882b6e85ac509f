"""One number format per kind of quantity, for every table (and figure label) of the report
and the features' figures.

A table column holds one kind of quantity, and every cell of it is written the same way:
counts as integers with thousands separators, areas in hectares with 2 decimals, ratios
(accuracies, IoU, F1, kappa, shares, disagreements, differences of those) with 3 decimals,
and so on (:data:`DECIMALS`). Missing or non-finite values are a dash.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"

DECIMALS = {
    "count": 0,  # pixels, points, tiles, polygons, classes: integers
    "area": 2,  # hectares
    "ratio": 3,  # accuracies, IoU, F1, kappa, shares, thresholds
    "seconds": 2,
    "megapixels": 3,
    "rate": 2,  # megapixels per second
    "stat": 2,  # a test statistic (z)
    "p": 3,  # a p-value; below 0.001 written "< 0.001"
    "value": 3,  # any other measured number (gains, offsets, band values)
}


def number(v: Any, kind: str) -> str:
    """``v`` written as a ``kind`` (a key of :data:`DECIMALS`): thousands separators and the
    kind's fixed number of decimals; None, NaN and infinities as a dash."""
    if v is None or isinstance(v, bool):
        return DASH
    x = float(v)
    if not math.isfinite(x):
        return DASH
    if kind == "p" and x < 10 ** -DECIMALS["p"]:
        return f"< {10 ** -DECIMALS['p']:.{DECIMALS['p']}f}"
    d = DECIMALS[kind]
    if d == 0:
        return f"{round(x):,}"
    return f"{x:,.{d}f}"


def kind_of(key: str, v: Any) -> str | None:
    """The kind of a named value of a key-value table (None: not a number, shown as text):
    from its name where it says (``*_ha``, ``*seconds``, ``megapixels``, ``*_per_s``,
    accuracies), else integers are counts and other numbers plain values."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    k = key.lower().replace(" ", "_")
    if k.endswith("_ha") or k.endswith("(ha)"):
        return "area"
    if "seconds" in k:
        return "seconds"
    if "megapixels" in k:
        return "megapixels"
    if k.endswith("per_s") or k.endswith("mpx/s"):
        return "rate"
    if any(w in k for w in ("accuracy", "iou", "f1", "kappa", "disagreement", "_oa")):
        return "ratio"
    if isinstance(v, int):
        return "count"
    return "value"


def decimals_for(values, kind: str = "area", width: int = 6) -> int:
    """Decimals for figure labels of ``kind`` (one for the whole figure): the kind's own, fewer
    when the largest value would need more than ``width`` digits, never below 0."""
    big = max((abs(float(v)) for v in values if v is not None and math.isfinite(v)), default=0)
    digits = len(f"{round(big):d}")
    return max(0, min(DECIMALS[kind], width - digits))

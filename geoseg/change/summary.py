"""Figures of a change detection from the merged block counts: pixel and area totals, the
transition matrix, Pontius components and the confidence gate's effect at other thresholds."""

from __future__ import annotations

import numpy as np

from geoseg.change.blocks import CONF_BINS
from geoseg.change.style import CHANGED, UNCERTAIN, UNCHANGED
from geoseg.core.classes import ClassList
from geoseg.core.transitions import Components, components

ORIENTATION = "rows = earlier date (from), columns = later date (to)"
SENSITIVITY = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
GATE_RULE = (
    "changed: the classes differ and both dates' largest class probability >= "
    "threshold; uncertain: the classes differ and either is below it (or has no "
    "probability); unchanged: same class"
)
GATE_DEFAULT_WHY = (
    "0.7 by default: above 0.5 the winning class is a strict majority whose runner-up has at "
    "most 1 - p = 0.3, so the label is not a near tie; if the probabilities were calibrated, "
    "both labels of a gated change are right with probability >= 0.7^2 = 0.49 (vs 0.25 at "
    "0.5) under independent errors. 'gate.sensitivity' gives the changed area at other "
    "thresholds from the same run"
)


def _ha(v):
    """Hectares to 1e-6 ha (0.01 m2): no float noise like 117.96000000000001 in reports."""
    return np.round(v, 6) if isinstance(v, np.ndarray) else round(float(v), 6)


def status_pixels(pairs: np.ndarray, uncertain: np.ndarray) -> dict[int, int]:
    n = pairs.shape[0] - 1
    m = pairs[:n, :n]
    unc = int(uncertain.sum())
    return {UNCHANGED: int(np.trace(m)), CHANGED: int(m.sum() - np.trace(m)) - unc, UNCERTAIN: unc}


def _per_class(classes: ClassList, comp: Components) -> dict:
    rows = []
    for i, c in enumerate(classes.classes):
        rows.append(
            {
                "id": c.id,
                "name": c.name,
                **{
                    f"{k}_ha": _ha(getattr(comp, k)[i])
                    for k in (
                        "before",
                        "after",
                        "persistence",
                        "gain",
                        "loss",
                        "net",
                        "swap",
                        "total_change",
                    )
                },
            }
        )
    return {"per_class": rows, "landscape_ha": {k: _ha(v) for k, v in comp.landscape().items()}}


def summarize(totals: dict, classes: ClassList, pixel_ha: float, threshold: float | None) -> dict:
    """Report sections: pixels, area_ha, transitions, components and gate."""
    pairs, unc = totals["pairs"], totals["uncertain"]
    n = len(classes.classes)
    m = pairs[:n, :n]
    st = status_pixels(pairs, unc)
    pixels = {
        "compared": int(m.sum()),
        "unchanged": st[UNCHANGED],
        "changed": st[CHANGED],
        "uncertain": st[UNCERTAIN],
        "nodata_before_only": int(pairs[n, :n].sum()),
        "nodata_after_only": int(pairs[:n, n].sum()),
        "nodata_both": int(pairs[n, n]),
    }
    area = {k: _ha(pixels[k] * pixel_ha) for k in ("compared", "unchanged", "changed", "uncertain")}
    transitions = {
        "orientation": ORIENTATION,
        "unit": "ha",
        "ids": classes.ids,
        "matrix_ha": _ha(m * pixel_ha).tolist(),
        "matrix_pixels": m.tolist(),
        "uncertain_pixels": unc.tolist(),
    }
    comps = {
        "definitions": "Pontius, Shusas & McEachern (2004): gain = column total - "
        "persistence, loss = row total - persistence, net = gain - loss, "
        "swap = 2 min(gain, loss)",
        "all": _per_class(classes, components(m * pixel_ha)),
        "confident": _per_class(classes, components((m - unc) * pixel_ha)),
    }
    comps["confident"]["note"] = (
        "uncertain pixels (classes differ, below the gate) left out: "
        "the change the gated map asserts"
    )
    gate: dict = {
        "applied": threshold is not None,
        "threshold": threshold,
        "rule": GATE_RULE,
        "why_default": GATE_DEFAULT_WHY,
        "uncertain_pixels": st[UNCERTAIN],
        "uncertain_ha": area["uncertain"],
    }
    differ = st[CHANGED] + st[UNCERTAIN]
    gate["gated_share_of_differing"] = st[UNCERTAIN] / differ if differ else None
    if threshold is not None:
        conf = np.arange(CONF_BINS) * (1 / 254)  # as read: uint8 value * 1/254
        hist = totals["hist"]
        gate["sensitivity"] = [
            {
                "threshold": t,
                "changed_ha": _ha(int(hist[conf >= t].sum()) * pixel_ha),
                "uncertain_ha": _ha(int(hist[conf < t].sum()) * pixel_ha),
            }
            for t in sorted({*SENSITIVITY, threshold})
        ]
        gate["sensitivity_note"] = "from a histogram of the lower confidence in bins of 1/254"
    return {
        "pixels": pixels,
        "area_ha": area,
        "transitions": transitions,
        "components": comps,
        "gate": gate,
    }

"""Figures of a map comparison from its counts: metrics of each map (:mod:`geoseg.core.metrics`),
and for each pair the accuracy differences, per-class F1 / IoU differences and McNemar's
test on the paired outcomes (both right, only A right, only B right, both wrong)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from geoseg.accuracy.reference import RasterReference
from geoseg.core import metrics as mx
from geoseg.errors import GeoSegError
from geoseg.version import __version__

BOTH_RIGHT, A_ONLY, B_ONLY, BOTH_WRONG = 1, 2, 3, 4  # disagreement map values; 0 = nodata

AUTOCORRELATION_NOTE = (
    "McNemar's test assumes independent units: neighbouring pixels are not, so on a census "
    "of reference pixels the p-values overstate significance (read them with the effect "
    "size, the accuracy difference); on a probability sample of points they are valid"
)


def pair_code(a_right: np.ndarray, b_right: np.ndarray) -> np.ndarray:
    """1 both right, 2 only A right, 3 only B right, 4 both wrong."""
    return (BOTH_WRONG - 2 * a_right.astype(np.uint8) - b_right.astype(np.uint8)).astype(np.uint8)


def outcome_counts(m: np.ndarray, r: np.ndarray, n: int, pairs) -> dict:
    """Matrices (maps x n x n) and pair outcome counts (pairs x 4) of compared units."""
    correct = m == r
    return {
        "matrices": np.stack([mx.confusion_matrix(mi, r, n) for mi in m]),
        "pairs": np.array(
            [np.bincount(pair_code(correct[a], correct[b]), minlength=5)[1:] for a, b in pairs],
            dtype=np.int64,
        ).reshape(len(pairs), 4),
    }


def _points(tot: dict, ref, n: int, pairs) -> tuple[dict, dict]:
    pm, inside = tot["point_maps"], tot["points_inside"]
    labelled = ref.values >= 0
    valid = (pm >= 0).all(axis=0)
    used = inside & labelled & valid
    counts = outcome_counts(pm[:, used], ref.values[used].astype(np.int16), n, pairs)
    excluded = {
        "unlabelled": int((~labelled).sum()),
        "outside_maps": int((labelled & ~inside).sum()),
        "some_map_nodata": int((labelled & inside & ~valid).sum()),
    }
    return counts, excluded


def summarize(cmaps, names, ref, source, class_map, tot, pairs, rasters) -> dict:
    n = cmaps[0].n
    notes = [ref.note] if isinstance(ref, RasterReference) else list(ref.notes)
    if ref.kind == "points":
        counts, excluded = _points(tot, ref, n, pairs)
        unit = "points"
        notes.append(
            "no disagreement maps for a point reference (the counts are in the McNemar table)"
        )
    else:
        counts = tot
        excluded = {"some_map_nodata": tot["left_out"]}
        unit = "pixels"
    mats = counts["matrices"]
    compared = int(mats[0].sum())
    if compared == 0:
        raise GeoSegError(
            f"no {unit} to compare: the maps and reference {source} do not "
            "overlap where every map has a class (or the reference is empty)"
        )
    accs = [mx.accuracy(cm) for cm in mats]
    per_map = []
    for cm, name, acc, mat in zip(cmaps, names, accs, mats, strict=True):
        per_map.append(
            {
                "name": name,
                "path": str(Path(cm.path).resolve()),
                "overall_accuracy": acc.oa,
                "mean_iou": acc.miou,
                "kappa": acc.kappa,
                "quantity_disagreement": acc.disagreement.quantity,
                "allocation_disagreement": acc.disagreement.allocation,
                "per_class": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "users_accuracy": acc.ua[i],
                        "producers_accuracy": acc.pa[i],
                        "f1": acc.f1[i],
                        "iou": acc.iou[i],
                        "map_total": int(mat[i].sum()),
                        "reference_total": int(mat[:, i].sum()),
                    }
                    for i, c in enumerate(cmaps[0].classes.classes)
                ],
                "confusion_matrix": mat.tolist(),
            }
        )
    out_pairs = []
    for i, (a, b) in enumerate(pairs):
        t = mx.mcnemar(*counts["pairs"][i].tolist())
        fa, fb = accs[a], accs[b]
        out_pairs.append(
            {
                "a": names[a],
                "b": names[b],
                "oa_a": fa.oa,
                "oa_b": fb.oa,
                "oa_difference": fa.oa - fb.oa,
                "miou_difference": fa.miou - fb.miou,
                "mcnemar": {**dataclasses.asdict(t), "n": t.n},
                "per_class_differences": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "f1_a": fa.f1[j],
                        "f1_b": fb.f1[j],
                        "f1_difference": fa.f1[j] - fb.f1[j],
                        "iou_a": fa.iou[j],
                        "iou_b": fb.iou[j],
                        "iou_difference": fa.iou[j] - fb.iou[j],
                    }
                    for j, c in enumerate(cmaps[0].classes.classes)
                ],
                "disagreement_map": None if rasters is None else str(rasters[i]),
            }
        )
    notes.append(AUTOCORRELATION_NOTE)
    return {
        "geoseg": {"version": __version__, "created": datetime.now(UTC).isoformat()},
        "maps": [
            {"name": nm, "path": str(Path(cm.path).resolve())}
            for nm, cm in zip(names, cmaps, strict=True)
        ],
        "reference": {
            "path": source,
            "kind": ref.kind,
            "field": getattr(ref, "field", None),
            "layer": getattr(ref, "layer", None),
            "class_map": {str(k): v for k, v in (class_map or {}).items()},
        },
        "unit": unit,
        "matrix_orientation": mx.ORIENTATION,
        "classes": [
            {"id": c.id, "name": c.name, "color": c.color} for c in cmaps[0].classes.classes
        ],
        "compared": compared,
        "excluded": excluded,
        "disagreement_codes": {
            "0": "not compared",
            str(BOTH_RIGHT): "both right",
            str(A_ONLY): "A right, B wrong",
            str(B_ONLY): "B right, A wrong",
            str(BOTH_WRONG): "both wrong",
        },
        "per_map": per_map,
        "pairs": out_pairs,
        "notes": notes,
    }

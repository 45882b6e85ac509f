"""Panoptic quality and instance detection scores (Kirillov et al. 2019; SpaceNet's F1).

A predicted and a reference instance of the same class match when their IoU exceeds 0.5,
which makes every match unique. Per thing class: TP, FP, FN; SQ (mean IoU of the matches),
RQ = TP / (TP + FP/2 + FN/2) (which is also F1 at IoU 0.5), PQ = SQ x RQ, precision, recall
and the count error. Predicted instances mostly (> 50 %) outside the reference's valid pixels
are ignored, as the PQ paper does with void. Stuff classes are one segment per class
(:func:`stuff_quality`, from the confusion matrix).

The inputs are additive over blocks: :func:`overlaps` of each block summed, with scene-wide
ids, give the scene's figures.
"""

from __future__ import annotations

import numpy as np

IOU_MATCH = 0.5


def overlaps(pred: np.ndarray, ref: np.ndarray, ref_valid: np.ndarray) -> dict[str, dict]:
    """Pixel counts of one block: ``pairs`` {(pred id, ref id): pixels}, ``pred``
    {id: pixels on valid reference}, ``pred_void`` {id: pixels outside it}, ``ref``
    {id: pixels} (ids > 0; 0 = no instance)."""

    def counts(values: np.ndarray) -> dict:
        u, n = np.unique(values[values > 0], return_counts=True)
        return dict(zip(u.tolist(), n.tolist(), strict=True))

    both = (pred > 0) & (ref > 0)
    key = pred[both].astype(np.uint64) << np.uint64(32) | ref[both].astype(np.uint64)
    u, n = np.unique(key, return_counts=True)
    pairs = {(int(k >> 32), int(k & 0xFFFFFFFF)): int(c) for k, c in zip(u, n, strict=True)}
    return {
        "pairs": pairs,
        "pred": counts(np.where(ref_valid, pred, 0)),
        "pred_void": counts(np.where(ref_valid, 0, pred)),
        "ref": counts(ref),
    }


def add(total: dict, part: dict) -> dict:
    """``part`` (:func:`overlaps` of a block) added into ``total``."""
    for name, d in part.items():
        t = total.setdefault(name, {})
        for k, v in d.items():
            t[k] = t.get(k, 0) + v
    return total


def panoptic_quality(
    counts: dict, pred_class: dict[int, int], ref_class: dict[int, int], classes: list[int]
) -> dict[int, dict]:
    """Per thing class id in ``classes``: tp, fp, fn, sq, rq, pq, f1, precision, recall,
    count (predicted), reference (count), count_error ((count - reference) / reference)."""
    pred_px = counts.get("pred", {})
    void = counts.get("pred_void", {})
    ref_px = counts.get("ref", {})
    matched_p, matched_r, ious = set(), set(), {k: [] for k in classes}
    for (p, r), inter in counts.get("pairs", {}).items():
        if pred_class.get(p) != ref_class.get(r):
            continue
        union = pred_px.get(p, 0) + ref_px[r] - inter
        iou = inter / union if union else 0.0
        if iou > IOU_MATCH:
            matched_p.add(p)
            matched_r.add(r)
            ious[ref_class[r]].append(iou)
    out = {}
    for k in classes:
        preds = [
            p
            for p, c in pred_class.items()
            if c == k and void.get(p, 0) <= 0.5 * (pred_px.get(p, 0) + void.get(p, 0))
        ]
        refs = [r for r, c in ref_class.items() if c == k]
        tp = len(ious[k])
        fp = sum(p not in matched_p for p in preds)
        fn = sum(r not in matched_r for r in refs)
        sq = float(np.mean(ious[k])) if tp else 0.0
        denom = tp + 0.5 * fp + 0.5 * fn
        rq = tp / denom if denom else 0.0
        out[k] = {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "sq": sq,
            "rq": rq,
            "pq": sq * rq,
            "f1": rq,
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "count": len(preds),
            "reference": len(refs),
            "count_error": (len(preds) - len(refs)) / len(refs) if refs else None,
        }
    return out


def stuff_quality(matrix: np.ndarray) -> np.ndarray:
    """PQ of each class as one segment (stuff): its IoU where that exceeds 0.5, else 0
    (``matrix``: reference rows x map columns, in class order)."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    union = m.sum(0) + m.sum(1) - tp
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=union > 0)
    return np.where(iou > IOU_MATCH, iou, 0.0)

"""Tables for the HTML report, built from the report dicts of evaluate, change and compare.

A table is ``{"caption", "columns", "rows"}`` with cells already formatted: ``{"text",
"num"}`` (numbers are right-aligned), so the template only lays them out.
"""

from __future__ import annotations

import math
from typing import Any


def fmt(v: Any, digits: int = 3) -> str:
    """A cell: integers with thousands separators, floats rounded, None as a dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and abs(v) < 10**-digits:
            return f"{v:.2g}"
        return f"{v:,.{digits}f}"
    if isinstance(v, list | tuple):
        return ", ".join(fmt(x, digits) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {fmt(x, digits)}" for k, x in v.items())
    return str(v)


def table(caption: str, columns: list[str], rows: list[list], digits: int = 3) -> dict:
    return {
        "caption": caption,
        "columns": columns,
        "rows": [[_cell(c, digits) for c in r] for r in rows],
    }


def _cell(v: Any, digits: int) -> dict:
    num = isinstance(v, int | float) and not isinstance(v, bool)
    return {"text": fmt(v, digits), "num": num or v is None}


def key_values(caption: str, d: dict, digits: int = 3) -> dict:
    return table(caption, ["", ""], [[k.replace("_", " "), v] for k, v in d.items()], digits)


def radiometry_table(r: dict) -> dict:
    """The band mapping a prediction used (``--normalize``): gain and offset per band, or for
    quantile matching the number of knots and the source values at 0, 50 and 100 %."""
    caption = f"Band radiometry (--normalize {r['mode']})"
    if all("gain" in b for b in r["bands"]):
        rows = [[i + 1, b["gain"], b["offset"]] for i, b in enumerate(r["bands"])]
        return table(caption, ["band", "gain", "offset"], rows, 3)
    rows = [
        [i + 1, b.get("knots"), *(b.get("src") or [None] * 3)] for i, b in enumerate(r["bands"])
    ]
    return table(caption, ["band", "knots", "source 0 %", "source 50 %", "source 100 %"], rows, 2)


def matrix(caption: str, corner: str, names: list[str], m: list[list], digits: int) -> dict:
    rows = [[n, *r, sum(x for x in r if x is not None)] for n, r in zip(names, m, strict=True)]
    cols = [sum(r[j] for r in m if r[j] is not None) for j in range(len(names))]
    rows.append(["total", *cols, sum(cols)])
    return table(caption, [corner, *names, "total"], rows, digits)


def accuracy_tables(rep: dict) -> list[dict]:
    """Overall figures, the confusion matrix and per-class accuracy of an evaluate report."""
    o = rep["overall"]
    overall = {
        "compared": rep["compared"],
        "unit": rep["unit"],
        "overall_accuracy": o["overall_accuracy"],
        "mean_IoU": o["mean_iou"],
        "quantity_disagreement": o["quantity_disagreement"],
        "allocation_disagreement": o["allocation_disagreement"],
    }
    s = rep.get("stratified")
    if s:
        oa = s["overall_accuracy"]
        overall["area-weighted_overall_accuracy"] = oa["estimate"]
        overall["95 %_CI_(±)"] = oa["ci95"]
    out = [key_values("Overall", overall)]
    names = [c["name"] for c in rep["classes"]]
    out.append(
        matrix(
            f"Confusion matrix ({rep['unit']}; rows = map, columns = reference)",
            "map \\ reference",
            names,
            rep["confusion_matrix"]["counts"],
            0,
        )
    )
    keys = ["users_accuracy", "producers_accuracy", "f1", "iou", "mapped_area_ha"]
    out.append(
        table(
            "Per class",
            ["class", "user's accuracy", "producer's accuracy", "F1", "IoU", "mapped area (ha)"],
            [[c["name"], *(c[k] for k in keys)] for c in rep["per_class"]],
        )
    )
    return out


def change_tables(rep: dict) -> list[dict]:
    """Areas, the transition matrix, per-class gains and losses and the gate's sensitivity of
    a change report."""
    area = rep["area_ha"]
    gate = rep["gate"]
    head = {
        "compared_ha": area["compared"],
        "unchanged_ha": area["unchanged"],
        "changed_ha": area["changed"],
        "uncertain_ha": area["uncertain"],
        "confidence_gate": gate["threshold"] if gate["applied"] else "not applied",
        "change_polygons": rep.get("polygons", {}).get("polygons"),
    }
    dates = f"{rep['before'].get('date') or 'before'} → {rep['after'].get('date') or 'after'}"
    out = [key_values(f"Change {dates}", head, 2)]
    names = [c["name"] for c in rep["classes"]]
    out.append(
        matrix(
            "Transitions (ha; rows = earlier date, columns = later date)",
            "from \\ to",
            names,
            rep["transitions"]["matrix_ha"],
            2,
        )
    )
    comp = rep["components"]["all"]["per_class"]
    keys = ["before_ha", "after_ha", "persistence_ha", "gain_ha", "loss_ha", "net_ha", "swap_ha"]
    out.append(
        table(
            "Gains and losses per class (ha; Pontius et al. 2004)",
            ["class", *(k[:-3] for k in keys)],
            [[c["name"], *(c[k] for k in keys)] for c in comp],
            2,
        )
    )
    if gate.get("sensitivity"):
        out.append(
            table(
                "Changed area at other confidence thresholds",
                ["threshold", "changed (ha)", "uncertain (ha)"],
                [[s["threshold"], s["changed_ha"], s["uncertain_ha"]] for s in gate["sensitivity"]],
                2,
            )
        )
    return out


def compare_tables(rep: dict, seconds: dict | None = None) -> list[dict]:
    """Methods side by side, per-class F1 and McNemar's test per pair of a compare report;
    ``seconds``: wall time per method name, where known."""
    seconds = seconds or {}
    keys = [
        "overall_accuracy",
        "mean_iou",
        "kappa",
        "quantity_disagreement",
        "allocation_disagreement",
    ]
    out = [
        table(
            f"Methods on the same {rep['compared']:,} reference {rep['unit']}",
            ["method", "OA", "mIoU", "kappa", "quantity dis.", "allocation dis.", "wall time (s)"],
            [[m["name"], *(m[k] for k in keys), seconds.get(m["name"])] for m in rep["per_map"]],
        )
    ]
    names = [c["name"] for c in rep["classes"]]
    f1 = [[n, *(m["per_class"][i]["f1"] for m in rep["per_map"])] for i, n in enumerate(names)]
    out.append(table("F1 per class", ["class", *(m["name"] for m in rep["per_map"])], f1))
    out.append(
        table(
            "McNemar's test (paired right/wrong; z > 0: the first method is more accurate)",
            [
                "pair",
                "OA difference",
                "mIoU difference",
                "only first right",
                "only second right",
                "z",
                "p (exact)",
            ],
            [
                [
                    f"{p['a']} vs {p['b']}",
                    p["oa_difference"],
                    p["miou_difference"],
                    p["mcnemar"]["a_only"],
                    p["mcnemar"]["b_only"],
                    p["mcnemar"]["z"],
                    p["mcnemar"]["p_exact"] or "< 1e-300",  # underflowed
                ]
                for p in rep["pairs"]
            ],
        )
    )
    return out

"""Tables for the HTML report, built from the report dicts of evaluate, change and compare.

A table is ``{"caption", "columns", "rows"}`` with cells already formatted: ``{"text",
"num"}`` (numbers are right-aligned; a cell may carry an ``href``), so the template only lays
them out. Each column has a kind of number (:mod:`geoseg.core.numbers`), so every cell of
a column is written the same way; a column of kind None is text (names, settings as given).
"""

from __future__ import annotations

import math
import re
from typing import Any

from geoseg.core.numbers import DASH, kind_of, number


def text(v: Any) -> str:
    """A value shown as it is (names, paths, settings): None as a dash, booleans yes/no."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list | tuple):
        return ", ".join(text(x) for x in v)
    if isinstance(v, dict):
        return "; ".join(f"{k}: {text(x)}" for k, x in v.items())
    return str(v)


def cell(v: Any, kind: str | None = None) -> dict:
    """A cell: a number of ``kind`` (right-aligned; None is a dash), else text. A dict with a
    ``text`` is taken as a cell already made (e.g. :func:`link`)."""
    if isinstance(v, dict) and "text" in v:
        return {"num": False, **v}
    numeric = v is None or (isinstance(v, int | float) and not isinstance(v, bool))
    if kind and numeric:
        return {"text": number(v, kind), "num": True}
    return {"text": text(v), "num": False}


def link(label: str, href: str | None) -> dict:
    return {"text": label, "num": False, "href": href}


_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def swatch(name: str, color: str | None) -> dict:
    """A class's name after a square of its colour (no colour where it is not ``#rrggbb``)."""
    ok = isinstance(color, str) and _HEX.fullmatch(color)
    return {"text": name, "num": False, "swatch": color if ok else None}


def swatches(classes: list[dict]) -> dict:
    """A class list (``id``, ``name``, ``color``) as one cell of colour squares and names."""
    items = [{"label": f"{c['id']}: {c['name']}", "color": c.get("color")} for c in classes]
    for it in items:
        if not (isinstance(it["color"], str) and _HEX.fullmatch(it["color"])):
            it["color"] = None
    return {"text": ", ".join(it["label"] for it in items), "num": False, "swatches": items}


# a key's words as a reader writes them: acronyms in their case, abbreviations spelt out
_WORDS = {
    "miou": "mIoU",
    "iou": "IoU",
    "oa": "OA",
    "f1": "F1",
    "val": "validation",
    "mpx": "Mpx",
    "sha256": "SHA-256",
    "tta": "TTA",
    "crs": "CRS",
    "ha": "(ha)",
    "ci": "CI",
}
_LABELS = {"mpx_per_s": "Mpx/s"}


def label(key: str) -> str:
    """A table row's label for a dict key: ``best_val_miou`` -> ``Best validation mIoU``,
    ``oa`` -> ``OA``, ``mpx_per_s`` -> ``Mpx/s``; the first word capitalised unless it is an
    acronym."""
    if key in _LABELS:
        return _LABELS[key]
    words = [w for w in key.replace("_", " ").split(" ") if w]
    if not words:
        return key
    out = [_WORDS.get(w.lower(), w) for w in words]
    first = out[0]
    if first == words[0] and first[:1].islower():
        out[0] = first[:1].upper() + first[1:]
    return " ".join(out)


def table(
    caption: str, columns: list[str], rows: list[list], kinds: list[str | None] | None = None
) -> dict:
    """``kinds``: the kind of number of each column (None: text); the first column is the
    row's name."""
    kinds = kinds or [None] * len(columns)
    return {
        "caption": caption,
        "columns": columns,
        "rows": [[cell(c, k) for c, k in zip(r, kinds, strict=True)] for r in rows],
    }


def key_values(caption: str, d: dict, kinds: dict[str, str | None] | None = None) -> dict:
    """A two-column table of named values; each value's kind from ``kinds`` by name, else
    from its name and type (:func:`geoseg.core.numbers.kind_of`)."""
    kinds = kinds or {}
    return {
        "caption": caption,
        "columns": ["", ""],
        "rows": [
            [cell(label(k)), cell(v, kinds[k] if k in kinds else kind_of(k, v))]
            for k, v in d.items()
        ],
    }


def radiometry_table(r: dict) -> dict:
    """The band mapping a prediction used (``--normalize``): gain and offset per band, or for
    quantile matching the number of knots and the source values at 0, 50 and 100 %."""
    caption = f"Band radiometry (--normalize {r['mode']})"
    if all("gain" in b for b in r["bands"]):
        rows = [[i + 1, b["gain"], b["offset"]] for i, b in enumerate(r["bands"])]
        return table(caption, ["band", "gain", "offset"], rows, [None, "value", "value"])
    rows = [
        [i + 1, b.get("knots"), *(b.get("src") or [None] * 3)] for i, b in enumerate(r["bands"])
    ]
    return table(
        caption,
        ["band", "knots", "source 0 %", "source 50 %", "source 100 %"],
        rows,
        [None, "count", "value", "value", "value"],
    )


def matrix(caption: str, corner: str, names: list[str], m: list[list], kind: str) -> dict:
    """A square matrix with row and column totals, every cell a ``kind``."""
    rows = [[n, *r, sum(x for x in r if x is not None)] for n, r in zip(names, m, strict=True)]
    cols = [sum(r[j] for r in m if r[j] is not None) for j in range(len(names))]
    rows.append(["total", *cols, sum(cols)])
    return table(caption, [corner, *names, "total"], rows, [None, *[kind] * (len(names) + 1)])


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
    out = [key_values("Overall", overall, {"compared": "count", "95 %_CI_(±)": "ratio"})]
    names = [c["name"] for c in rep["classes"]]
    out.append(
        matrix(
            f"Confusion matrix ({rep['unit']}; rows = map, columns = reference)",
            "map \\ reference",
            names,
            rep["confusion_matrix"]["counts"],
            "count",
        )
    )
    keys = ["users_accuracy", "producers_accuracy", "f1", "iou", "mapped_area_ha"]
    colors = _colors(rep)
    out.append(
        table(
            "Per class",
            ["class", "user's accuracy", "producer's accuracy", "F1", "IoU", "mapped area (ha)"],
            [[swatch(c["name"], colors.get(c["name"])), *(c[k] for k in keys)]
             for c in rep["per_class"]],
            [None, "ratio", "ratio", "ratio", "ratio", "area"],
        )
    )  # fmt: skip
    never = [c["name"] for c in rep["per_class"] if c.get("mapped_area_ha") == 0]
    if never:
        out[0]["rows"] += [
            [cell("Caveat"), cell(f"{n} is never mapped: its user's accuracy is undefined")]
            for n in never
        ]
    return out


def _colors(rep: dict) -> dict[str, str]:
    return {c["name"]: c.get("color") for c in rep.get("classes") or []}


def change_caveats(rep: dict) -> list[str]:
    """What a reader of the change figures must know: a class one date never maps (its
    gains or losses are the other map's area, not change on the ground), the gate off."""
    out = []
    for c in rep["components"]["all"]["per_class"]:
        before, after = c.get("before_ha") or 0, c.get("after_ha") or 0
        if before > 0 and after == 0:
            out.append(
                f"{c['name']} is never mapped on the later date: its change figures only "
                "reflect the earlier map"
            )
        elif after > 0 and before == 0:
            out.append(
                f"{c['name']} is never mapped on the earlier date: its change figures only "
                "reflect the later map"
            )
    if not rep["gate"]["applied"]:
        out.append(
            "the confidence gate is off (no probabilities): every difference between the maps "
            "counts as change, misclassifications included"
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
    kinds = {"confidence_gate": "ratio", "change_polygons": "count"}
    out = [key_values(f"Change {dates}", head, kinds)]
    out[0]["rows"] += [[cell("Caveat"), cell(c)] for c in change_caveats(rep)]
    names = [c["name"] for c in rep["classes"]]
    out.append(
        matrix(
            "Transitions (ha; rows = earlier date, columns = later date)",
            "from \\ to",
            names,
            rep["transitions"]["matrix_ha"],
            "area",
        )
    )
    comp = rep["components"]["all"]["per_class"]
    colors = _colors(rep)
    keys = ["before_ha", "after_ha", "persistence_ha", "gain_ha", "loss_ha", "net_ha", "swap_ha"]
    out.append(
        table(
            "Gains and losses per class (ha; Pontius et al. 2004)",
            ["class", *(k[:-3] for k in keys)],
            [[swatch(c["name"], colors.get(c["name"])), *(c[k] for k in keys)] for c in comp],
            [None, *["area"] * len(keys)],
        )
    )
    if gate.get("sensitivity"):
        out.append(
            table(
                "Changed area at other confidence thresholds",
                ["threshold", "changed (ha)", "uncertain (ha)"],
                [[s["threshold"], s["changed_ha"], s["uncertain_ha"]] for s in gate["sensitivity"]],
                ["ratio", "area", "area"],
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
            f"Methods on the same {number(rep['compared'], 'count')} reference {rep['unit']}",
            ["method", "OA", "mIoU", "kappa", "quantity dis.", "allocation dis.", "wall time (s)"],
            [[m["name"], *(m[k] for k in keys), seconds.get(m["name"])] for m in rep["per_map"]],
            [None, *["ratio"] * len(keys), "seconds"],
        )
    ]
    names = [c["name"] for c in rep["classes"]]
    f1 = [[n, *(m["per_class"][i]["f1"] for m in rep["per_map"])] for i, n in enumerate(names)]
    methods = [m["name"] for m in rep["per_map"]]
    out.append(table("F1 per class", ["class", *methods], f1, [None, *["ratio"] * len(methods)]))
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
                    p["mcnemar"]["p_exact"] or 0.0,  # None: underflowed
                ]
                for p in rep["pairs"]
            ],
            [None, "ratio", "ratio", "count", "count", "stat", "p"],
        )
    )
    return out

"""Files of a map comparison: compare.json, CSV tables, a PNG chart, and the disagreement
legend. Every file is written under a temporary name and renamed; compare.json comes last,
so its presence means the set is complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geoseg.core.classes import ClassInfo, ClassList
from geoseg.io.files import atomic_write, clean, csv_bytes, matrix_csv, png_bytes


def disagreement_legend(a: str, b: str) -> ClassList:
    """Values of a disagreement map of maps ``a`` and ``b`` (0 = not compared)."""
    return ClassList(
        classes=[
            ClassInfo(id=1, name="both right", color="#d9d9d9"),
            ClassInfo(id=2, name=f"{a} right, {b} wrong", color="#1f78b4"),
            ClassInfo(id=3, name=f"{b} right, {a} wrong", color="#e31a1c"),
            ClassInfo(id=4, name="both wrong", color="#525252"),
        ]
    )


def write_compare(out_dir: Path, report: dict) -> dict[str, str]:
    """Write the tables, the chart and compare.json (last) for ``report``; returns the
    files written, disagreement maps included."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}

    def put(kind: str, name: str, data: bytes) -> None:
        atomic_write(out_dir / name, data)
        files[kind] = str(out_dir / name)

    put("metrics_csv", "metrics.csv", _metrics_csv(report))
    put("per_class_csv", "per_class.csv", _per_class_csv(report))
    put("mcnemar_csv", "mcnemar.csv", _mcnemar_csv(report))
    put("per_class_differences_csv", "per_class_differences.csv", _differences_csv(report))
    names = [c["name"] for c in report["classes"]]
    for m in report["per_map"]:
        put(
            f"confusion_matrix_{m['name']}_csv",
            f"confusion_matrix_{m['name']}.csv",
            matrix_csv(names, m["confusion_matrix"], totals=True),
        )
    put("chart_png", "compare.png", _chart_png(report))
    for p in report["pairs"]:
        if p["disagreement_map"]:
            files[f"disagreement_{p['a']}_vs_{p['b']}"] = p["disagreement_map"]
    files["compare_json"] = str(out_dir / "compare.json")
    atomic_write(
        out_dir / "compare.json", json.dumps(clean({**report, "files": files}), indent=2).encode()
    )
    return files


def _metrics_csv(report: dict) -> bytes:
    names = [c["name"] for c in report["classes"]]
    rows = [
        [
            "map",
            "overall_accuracy",
            "mean_iou",
            "kappa",
            "quantity_disagreement",
            "allocation_disagreement",
            *[f"f1_{n}" for n in names],
        ]
    ]
    for m in report["per_map"]:
        rows.append(
            [
                m["name"],
                m["overall_accuracy"],
                m["mean_iou"],
                m["kappa"],
                m["quantity_disagreement"],
                m["allocation_disagreement"],
                *[c["f1"] for c in m["per_class"]],
            ]
        )
    return csv_bytes(rows)


def _per_class_csv(report: dict) -> bytes:
    keys = ["users_accuracy", "producers_accuracy", "f1", "iou", "map_total", "reference_total"]
    rows = [["map", "id", "name", *keys]]
    for m in report["per_map"]:
        rows += [[m["name"], c["id"], c["name"], *[c[k] for k in keys]] for c in m["per_class"]]
    return csv_bytes(rows)


def _mcnemar_csv(report: dict) -> bytes:
    keys = [
        "n",
        "both_right",
        "a_only",
        "b_only",
        "both_wrong",
        "z",
        "chi2",
        "p_chi2",
        "p_exact",
        "p",
        "method",
    ]
    rows = [["a", "b", "oa_a", "oa_b", "oa_difference", "miou_difference", *keys]]
    for p in report["pairs"]:
        rows.append(
            [
                p["a"],
                p["b"],
                p["oa_a"],
                p["oa_b"],
                p["oa_difference"],
                p["miou_difference"],
                *[p["mcnemar"][k] for k in keys],
            ]
        )
    return csv_bytes(rows)


def _differences_csv(report: dict) -> bytes:
    keys = ["f1_a", "f1_b", "f1_difference", "iou_a", "iou_b", "iou_difference"]
    rows = [["a", "b", "id", "name", *keys]]
    for p in report["pairs"]:
        rows += [
            [p["a"], p["b"], c["id"], c["name"], *[c[k] for k in keys]]
            for c in p["per_class_differences"]
        ]
    return csv_bytes(rows)


def _chart_png(report: dict) -> bytes:
    """Grouped bars: OA, mIoU and each class's F1, one bar per map."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    groups = ["OA", "mIoU", *[c["name"] for c in report["classes"]]]
    maps = report["per_map"]
    x = np.arange(len(groups))
    width = 0.8 / len(maps)
    fig = Figure(figsize=(min(4 + 0.9 * len(groups), 30), 4.8))
    ax = fig.add_subplot()
    for k, m in enumerate(maps):
        vals = [m["overall_accuracy"], m["mean_iou"], *[c["f1"] for c in m["per_class"]]]
        v = np.array([np.nan if a is None else a for a in clean(vals)], dtype=float)
        ax.bar(x + (k - (len(maps) - 1) / 2) * width, np.nan_to_num(v), width, label=m["name"])
    ax.axvline(1.5, color="0.6", lw=0.8)
    ax.set_xticks(
        x,
        groups,
        rotation=45 if len(groups) > 7 else 0,
        ha="right" if len(groups) > 7 else "center",
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("OA, mIoU / per-class F1")
    lines = [
        f"{p['a']} vs {p['b']}: dOA {p['oa_difference']:+.3f}, McNemar p {p['mcnemar']['p']:.2g}"
        for p in report["pairs"][:3]
    ]
    ax.set_title(
        f"Maps on the same {report['compared']:,} {report['unit']}\n" + "; ".join(lines), fontsize=9
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)

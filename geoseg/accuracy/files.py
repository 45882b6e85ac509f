"""Files of an accuracy assessment: report.json, CSV tables and PNG plots.

report.json comes last, so its presence means the set is complete (each file is written under
a temporary name and renamed, :func:`geoseg.io.files.atomic_write`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from geoseg.core.numbers import number
from geoseg.io.files import atomic_write, clean, csv_bytes, matrix_csv, png_bytes


def write_assessment(out_dir: Path, report: dict) -> dict[str, str]:
    """Write the files for ``report`` into ``out_dir``; returns {kind: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [c["name"] for c in report["classes"]]
    files: dict[str, str] = {}

    def put(kind: str, name: str, data: bytes) -> None:
        path = out_dir / name
        atomic_write(path, data)
        files[kind] = str(path)

    put(
        "confusion_matrix_csv",
        "confusion_matrix.csv",
        matrix_csv(names, report["confusion_matrix"]["counts"], totals=True),
    )
    strat = report.get("stratified")
    if strat:
        put(
            "area_proportions_csv",
            "area_proportions.csv",
            matrix_csv(names, strat["area_proportions"]["values"], totals=True),
        )
    else:  # not left over from an earlier, stratified report in this folder
        with contextlib.suppress(FileNotFoundError):
            (out_dir / "area_proportions.csv").unlink()
    put("per_class_csv", "per_class.csv", _per_class_csv(report))
    put("confusion_matrix_png", "confusion_matrix.png", _heatmap_png(report))
    put("per_class_png", "per_class.png", _bars_png(report))
    files["report_json"] = str(out_dir / "report.json")
    atomic_write(
        out_dir / "report.json", json.dumps(clean({**report, "files": files}), indent=2).encode()
    )
    return files


def _per_class_csv(report: dict) -> bytes:
    keys = [
        "id",
        "name",
        "map_total",
        "reference_total",
        "users_accuracy",
        "producers_accuracy",
        "f1",
        "iou",
        "quantity_disagreement",
        "allocation_disagreement",
        "mapped_pixels",
        "mapped_area_ha",
    ]
    strat = report.get("stratified")
    skeys = ["users_accuracy", "producers_accuracy", "area_proportion", "area_ha"]
    header = list(keys)
    if strat:
        header += ["sample_size", "stratum_weight"]
        for k in skeys:
            header += [f"est_{k}", f"est_{k}_se", f"est_{k}_ci95"]
    rows = [header]
    for i, c in enumerate(report["per_class"]):
        row = [c[k] for k in keys]
        if strat:
            s = strat["per_class"][i]
            row += [s["sample_size"], s["weight"]]
            for k in skeys:
                e = s[k] or {}
                row += [e.get("estimate"), e.get("se"), e.get("ci95")]
        rows.append(row)
    return csv_bytes(rows)


CELL_IN = 0.62  # a matrix cell, inches (74 px at the 120 dpi of png_bytes): fits "123,456"


def _heatmap_png(report: dict) -> bytes:
    """Counts, coloured by their share of the map-class row (the diagonal reads as UA). The
    figure grows with the number of classes (a fixed cell size), so it is read at its own
    size rather than shrunk."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    names = [c["name"] for c in report["classes"]]
    cm = np.asarray(report["confusion_matrix"]["counts"], dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(names)
    label_in = 0.3 + 0.075 * max((len(x) for x in names), default=4)  # class names
    side = n * CELL_IN
    fig = Figure(
        figsize=(max(6.5, side + label_in + 2.2), side + label_in + 1.1), layout="constrained"
    )
    ax = fig.add_subplot()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("reference class")
    ax.set_ylabel("map class")
    oa = report["overall"]["overall_accuracy"]
    ax.set_title(
        f"Confusion matrix ({report['unit']}; rows = map, columns = reference)\n"
        f"OA = {number(oa, 'ratio')}, n = {number(cm.sum(), 'count')}",
        fontsize=10,
    )
    if n <= 40:
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    number(cm[i, j], "count"),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.6 else "black",
                )
    fig.colorbar(
        im,
        ax=ax,
        shrink=0.8,
        label="share of the map-class row\n(diagonal = user's accuracy)",
    )
    return png_bytes(fig)


def _bars_png(report: dict) -> bytes:
    """UA, PA and F1 per class; with a stratified sample, its estimates and 95 % CIs."""
    from matplotlib.figure import Figure

    names = [c["name"] for c in report["classes"]]
    strat = report.get("stratified")
    if strat:
        pcs = strat["per_class"]
        series = [
            (
                "user's accuracy",
                [p["users_accuracy"]["estimate"] for p in pcs],
                [p["users_accuracy"]["ci95"] for p in pcs],
            ),
            (
                "producer's accuracy",
                [p["producers_accuracy"]["estimate"] for p in pcs],
                [p["producers_accuracy"]["ci95"] for p in pcs],
            ),
            ("F1", [p["f1"] for p in pcs], None),
        ]
        title = "Per-class accuracy, area-weighted estimates with 95 % CI"
    else:
        pcs = report["per_class"]
        series = [
            ("user's accuracy", [p["users_accuracy"] for p in pcs], None),
            ("producer's accuracy", [p["producers_accuracy"] for p in pcs], None),
            ("F1", [p["f1"] for p in pcs], None),
        ]
        title = f"Per-class accuracy ({report['unit']})"
    n = len(names)  # a fixed width per class: wide with many classes, never squeezed
    fig = Figure(figsize=(max(6.0, 1.5 + 0.55 * n), 4.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(n)
    width = 0.27
    for k, (label, vals, err) in enumerate(series):
        v = np.array([np.nan if a is None else a for a in clean(vals)], dtype=float)
        e = (
            None
            if err is None
            else np.array([0.0 if a is None else a for a in clean(err)], dtype=float)
        )
        ax.bar(x + (k - 1) * width, np.nan_to_num(v), width, yerr=e, capsize=2, label=label)
    ax.set_xticks(
        x,
        names,
        rotation=45 if n > 6 else 0,
        ha="right" if n > 6 else "center",
        rotation_mode="anchor",
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)

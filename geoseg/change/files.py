"""Files of a change detection: transition tables (CSV), report.json and a transition plot.

Every file is written under a temporary name and renamed; report.json comes last, so its
presence means the set is complete. Matrices have rows = the earlier date ("from") and
columns = the later date ("to"), in hectares.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geoseg.core.numbers import decimals_for
from geoseg.io.files import atomic_write, clean, csv_bytes, png_bytes

CORNER = "from \\ to (ha)"
COMPONENTS = ("persistence", "gain", "loss", "net", "swap")


def write_change_report(out_dir: Path, report: dict, files: dict[str, str]) -> dict[str, str]:
    """Write the tables, the plot and report.json (last); returns ``files`` completed."""
    names = [c["name"] for c in report["classes"]]
    tr = report["transitions"]

    def put(kind: str, name: str, data: bytes) -> None:
        atomic_write(out_dir / name, data)
        files[kind] = str(out_dir / name)

    put("transitions_csv", "transitions.csv", _matrix_csv(names, tr["matrix_ha"]))
    put("class_changes_csv", "class_changes.csv", _classes_csv(report))
    put("transitions_png", "transitions.png", _plot(report))
    files["report_json"] = str(out_dir / "report.json")
    atomic_write(
        out_dir / "report.json", json.dumps(clean({**report, "files": files}), indent=2).encode()
    )
    return files


def _matrix_csv(names: list[str], matrix) -> bytes:
    m = np.asarray(matrix, dtype=float)
    rows = [[CORNER, *names, "total (before)"]]
    for name, r in zip(names, m, strict=True):
        rows.append([name, *r.tolist(), r.sum()])
    rows.append(["total (after)", *m.sum(axis=0).tolist(), m.sum()])
    return csv_bytes(rows)


def _classes_csv(report: dict) -> bytes:
    comp = report["components"]
    header = [
        "id",
        "name",
        "before_ha",
        "after_ha",
        *(f"{k}_ha" for k in COMPONENTS),
        "total_change_ha",
        *(f"confident_{k}_ha" for k in COMPONENTS[1:]),
    ]
    rows = [header]
    for c, a, g in zip(
        report["classes"], comp["all"]["per_class"], comp["confident"]["per_class"], strict=True
    ):
        rows.append(
            [
                c["id"],
                c["name"],
                a["before_ha"],
                a["after_ha"],
                *(a[f"{k}_ha"] for k in COMPONENTS),
                a["total_change_ha"],
                *(g[f"{k}_ha"] for k in COMPONENTS[1:]),
            ]
        )
    return csv_bytes(rows)


CELL_IN = 0.62  # a matrix cell, inches (74 px at the 120 dpi of png_bytes): fits "12,345.6"


def _plot(report: dict) -> bytes:
    """Transition heat map (share of each from-class, annotated in ha) above gain, loss and
    net change per class. The figure grows with the number of classes (a fixed cell size),
    so it is read at its own size rather than shrunk."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state

    names = [c["name"] for c in report["classes"]]
    m = np.asarray(report["transitions"]["matrix_ha"], dtype=float)
    n = len(names)
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    label_in = 0.3 + 0.075 * max((len(x) for x in names), default=4)  # rotated class names
    side = n * CELL_IN
    heat_h, bars_h = side + label_in + 1.1, 3.2 + label_in
    fig = Figure(figsize=(max(7.0, side + label_in + 2.2), heat_h + bars_h), layout="constrained")
    ax, bx = fig.subplots(2, 1, height_ratios=[heat_h, bars_h])
    im = ax.imshow(share, cmap="YlOrRd", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), names)
    ax.set_xlabel(f"to ({report['after']['date'] or 'after'})")
    ax.set_ylabel(f"from ({report['before']['date'] or 'before'})")
    area = report["area_ha"]
    d = decimals_for([area["compared"]], "area", 7)
    ax.set_title(
        f"Transitions, ha (colour: share of the from-class)\nchanged "
        f"{area['changed']:,.{d}f} ha, uncertain {area['uncertain']:,.{d}f} ha of "
        f"{area['compared']:,.{d}f} ha"
    )
    if n <= 40:
        d = decimals_for(m.ravel().tolist(), "area")
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:,.{d}f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.6 else "black",
                )
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the from-class area")
    per = report["components"]["all"]["per_class"]
    x = np.arange(n)
    for k, (key, label) in enumerate(
        (("gain_ha", "gross gain"), ("loss_ha", "gross loss"), ("net_ha", "net change"))
    ):
        vals = [-p[key] if key == "loss_ha" else p[key] for p in per]
        bx.bar(x + (k - 1) * 0.27, vals, 0.27, label=label)
    bx.axhline(0, color="black", lw=0.8)
    bx.set_xticks(x, names, rotation=45, ha="right", rotation_mode="anchor")
    bx.set_ylabel("ha (loss drawn negative)")
    bx.set_title("Gross gain, gross loss and net change per class (all pixels)")
    bx.legend(fontsize=9)
    bx.grid(axis="y", alpha=0.3)
    return png_bytes(fig)

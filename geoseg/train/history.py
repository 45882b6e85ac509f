"""The per-epoch training record: a CSV and a PNG of the curves (matplotlib, no display)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from geoseg.io.files import atomic_path

CSV_NAME = "training_history.csv"
PNG_NAME = "training_curves.png"


def write_csv(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with atomic_path(path, user_error=False) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def plot_curves(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Training and validation loss (left), validation OA, mIoU and per-class IoU (right)."""
    from matplotlib.figure import Figure  # the Agg canvas: no display needed

    path = Path(path)
    ep = [r["epoch"] for r in rows]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [r["train_loss"] for r in rows], "o-", label="training loss")
    if any(_finite(r.get("val_loss")) for r in rows):
        ax1.plot(ep, [r.get("val_loss") for r in rows], "s-", label="validation loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ious = [k for k in rows[0] if k.startswith("iou_")]
    for k in ious:
        ax2.plot(ep, [r[k] for r in rows], lw=0.9, alpha=0.6, label=k[4:])
    ax2.plot(ep, [r["val_miou"] for r in rows], "k-", lw=2.2, label="mIoU")
    ax2.plot(ep, [r["val_oa"] for r in rows], "k--", lw=1.6, label="OA")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation")
    ax2.set_ylim(0, 1)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title)
    with atomic_path(path, suffix=path.suffix, user_error=False) as tmp:
        fig.savefig(tmp, dpi=110)
    return path


def _finite(v) -> bool:
    return isinstance(v, float) and math.isfinite(v)

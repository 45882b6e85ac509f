"""Validation during training: a fixed set of windows over the validation pixels, read and
normalised once, and the confusion matrix (rows = map, columns = reference) of the model on
them after every epoch.

The validation region is cut into ``size`` x ``size`` cells; each cell is predicted from a
window of that size (shifted inside the scene at its right and bottom edges, so the model sees
real context) and counts only its own labelled validation pixels, so no pixel counts twice.
Cells are taken in a seeded random order until ``max_pixels`` have been read.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from geoseg.core.grid import Window
from geoseg.core.metrics import ConfusionAccumulator, iou_scores, mean_iou, overall_accuracy
from geoseg.model.bundle import BundleMeta
from geoseg.model.runner import memory_format, normalize
from geoseg.train.data import SceneData
from geoseg.train.labels import IGNORE
from geoseg.train.split import SceneSplit


@dataclass
class ValSet:
    x: list[np.ndarray] = field(default_factory=list)  # normalised, bands x size x size
    y: list[np.ndarray] = field(default_factory=list)  # class indices, IGNORE where not counted
    pixels: int = 0  # labelled validation pixels counted

    def __len__(self) -> int:
        return len(self.x)


def val_cells(d: SceneData, split: SceneSplit, size: int) -> list[tuple[Window, Window]]:
    """(read window, own cell) pairs covering the scene's validation pixels."""
    h, w = d.height, d.width
    out = []
    for r in range(0, h, size):
        for c in range(0, w, size):
            own = Window(r, c, min(size, h - r), min(size, w - c))
            if split.val_mask(own).any():
                read = Window(min(r, max(h - size, 0)), min(c, max(w - size, 0)), size, size)
                out.append((read, own))
    return out


def build_val_set(
    scenes: list[SceneData],
    splits: list[SceneSplit],
    meta: BundleMeta,
    size: int,
    max_pixels: int,
    seed: int = 0,
) -> ValSet:
    cells = [
        (d, sp, rw, own)
        for d, sp in zip(scenes, splits, strict=True)
        if sp.has_val
        for rw, own in val_cells(d, sp, size)
    ]
    order = np.random.default_rng([seed, 31337]).permutation(len(cells))
    vs = ValSet()
    for k in order:
        if len(vs) * size * size >= max_pixels:
            break
        d, sp, rw, own = cells[k]
        x, valid, y = d.read(rw)
        keep = np.zeros(y.shape, dtype=bool)
        keep[own.slices(origin=(rw.row, rw.col))] = True
        keep &= sp.val_mask(rw) & (y != IGNORE)
        if not keep.any():
            continue
        y[~keep] = IGNORE
        vs.x.append(normalize(x, valid, meta))
        vs.y.append(y)
        vs.pixels += int(keep.sum())
    return vs


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def evaluate(
    model: torch.nn.Module,
    vs: ValSet,
    n_classes: int,
    loss_fn=None,
    batch_size: int = 4,
    device: torch.device | None = None,
    amp_dtype: torch.dtype | None = None,
) -> dict:
    """OA, mIoU, per-class IoU (NaN for classes neither mapped nor in the reference), mean
    loss and the confusion matrix of ``model`` on the validation set."""
    device = device or torch.device("cpu")
    acc = ConfusionAccumulator(n_classes)
    losses = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(vs), batch_size):
            x = torch.from_numpy(np.stack(vs.x[i : i + batch_size])).to(device)
            x = x.contiguous(memory_format=memory_format(device))
            y = torch.from_numpy(np.stack(vs.y[i : i + batch_size])).to(device)
            with autocast(device, amp_dtype):
                logits = model(x)
            logits = logits.float()
            if loss_fn is not None:
                losses.append(float(loss_fn(logits, y)) * int((y != IGNORE).sum()))
            pred = logits.argmax(1).cpu().numpy()
            ref = y.cpu().numpy().astype(np.int64)
            ref[ref == IGNORE] = -1
            acc.add(pred, ref)
    cm = acc.matrix
    return {
        "oa": overall_accuracy(cm) if cm.sum() else math.nan,
        "miou": mean_iou(cm),
        "iou": iou_scores(cm),
        "loss": sum(losses) / vs.pixels if losses else math.nan,
        "matrix": cm,
    }

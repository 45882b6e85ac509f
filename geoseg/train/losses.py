"""Segmentation losses: weighted cross-entropy, Dice and focal, and weighted sums of them.

Pixels whose target is ``IGNORE`` (unlabelled, nodata) take no part in any term.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from geoseg.errors import GeoSegError
from geoseg.train.config import LossConfig
from geoseg.train.labels import IGNORE


def auto_class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse square root of each class's frequency, scaled so that the mean weight of a
    labelled pixel is 1; classes without training pixels get 0."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    w = np.zeros_like(counts)
    present = counts > 0
    w[present] = 1.0 / np.sqrt(counts[present] / total)
    return w / ((w * counts).sum() / total)


def class_weights(cfg: LossConfig, counts: np.ndarray) -> np.ndarray | None:
    if cfg.class_weights == "none":
        return None
    if cfg.class_weights == "auto":
        return auto_class_weights(counts)
    w = np.asarray(cfg.class_weights, dtype=np.float64)
    if len(w) != len(counts):
        raise GeoSegError(
            f"training.loss.class_weights has {len(w)} values for {len(counts)} classes"
        )
    return w


class SegmentationLoss(nn.Module):
    """``ce * CE(weights) + dice * Dice + focal * Focal`` over labelled pixels."""

    def __init__(self, cfg: LossConfig, weights: np.ndarray | None = None):
        super().__init__()
        self.cfg = cfg
        w = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.register_buffer("weight", w)
        self.dice = None
        if cfg.dice > 0:
            from segmentation_models_pytorch.losses import DiceLoss

            self.dice = DiceLoss(mode="multiclass", from_logits=True, ignore_index=IGNORE)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        target = target.long()
        if not (target != IGNORE).any():
            return logits.sum() * 0.0  # keeps the graph; nothing to learn from
        total = logits.new_zeros(())
        if self.cfg.ce > 0:
            total = total + self.cfg.ce * F.cross_entropy(
                logits, target, weight=self.weight, ignore_index=IGNORE
            )
        if self.dice is not None:
            total = total + self.cfg.dice * self.dice(logits, target)
        if self.cfg.focal > 0:
            total = total + self.cfg.focal * focal_loss(logits, target, self.cfg.focal_gamma)
        return total


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Softmax focal loss (Lin et al. 2017), mean over labelled pixels: -(1 - p_t)^gamma
    log p_t."""
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    keep = target != IGNORE
    ce = ce[keep]
    pt = torch.exp(-ce)
    return ((1 - pt) ** gamma * ce).mean()

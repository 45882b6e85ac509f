"""Training outputs beyond the classes: one loss per model head.

A head is declared in the training config (``model.heads``) and in the bundle
(:class:`geoseg.model.bundle.Head`); its target is derived from the class labels of the
batch, after augmentation, so every crop and view gets its own. ``boundary``: the pixels of
a thing class within ``width`` pixels of another class (or of another thing class), the
border channel that separates touching objects (the interior / border split of SpaceNet's
building models), learned over labelled pixels with a binary cross-entropy whose border
pixels weigh the batch's ratio of other pixels to border pixels, plus a soft Dice term
(``loss: balanced``, the default; SpaceNet's winning building models used both), or a plain
binary cross-entropy (``loss: bce``: with a border of ~5 % of the pixels, the head learned the
prior and no border on Dubai).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geoseg.model.bundle import Head
from geoseg.train.labels import IGNORE

ACTIVATIONS = {"boundary": "sigmoid"}


def bundle_heads(heads, n_classes: int) -> list[Head] | None:
    """The bundle's heads for the config's ``heads`` (None without extra heads)."""
    if not heads:
        return None
    extra = [Head(name=h.name, channels=1, activation=ACTIVATIONS[h.name]) for h in heads]
    return [Head(name="classes", channels=n_classes), *extra]


def boundary_target(y: torch.Tensor, things: list[int], width: int) -> torch.Tensor:
    """1 where a pixel of a thing class (indices ``things``) lies within ``width`` pixels of a
    labelled pixel of any other class, else 0 (float, N x H x W)."""
    out = torch.zeros(y.shape, dtype=torch.float32, device=y.device)
    labelled = y != IGNORE
    k = 2 * width + 1
    for t in things:
        mine = y == t
        other = (labelled & ~mine).float().unsqueeze(1)
        near = F.max_pool2d(other, k, stride=1, padding=width).squeeze(1) > 0
        out[mine & near] = 1.0
    return out


class HeadsLoss(nn.Module):
    """The classes' loss on the classes head plus, per extra head, its weight times its own
    loss; :meth:`classes` is the classes' part alone (validation)."""

    def __init__(self, classes_loss: nn.Module, n_classes: int, heads, things: list[int]):
        super().__init__()
        self.classes, self.n = classes_loss, n_classes
        self.heads, self.things = list(heads), things

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = self.classes(logits[:, : self.n], y)
        valid = y != IGNORE
        for i, h in enumerate(self.heads):
            if not valid.any():
                continue
            target = boundary_target(y.long(), self.things, h.width)
            raw = logits[:, self.n + i].float()
            total = total + h.weight * border_loss(raw[valid], target[valid], h.loss)
        return total


def border_loss(raw: torch.Tensor, target: torch.Tensor, kind: str = "balanced") -> torch.Tensor:
    """The loss of a border channel's logits ``raw`` against its 0/1 ``target`` (flat)."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(raw, target)
    pos = target.sum()
    neg = target.numel() - pos
    weight = (neg / pos).clamp(max=100.0) if pos > 0 else raw.new_tensor(1.0)
    bce = F.binary_cross_entropy_with_logits(raw, target, pos_weight=weight)
    p = torch.sigmoid(raw)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + dice


class ClassesOnly(nn.Module):
    """The model with only its classes head's logits: what validation and pseudo-labels
    read."""

    def __init__(self, model: nn.Module, n_classes: int):
        super().__init__()
        self.model, self.n = model, n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, : self.n]

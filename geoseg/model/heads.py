"""A model's named outputs (:class:`geoseg.model.bundle.Head`) from its logits.

The network outputs every head's channels in one tensor, in the bundle's head order; each
head's logits become values by its own activation (softmax across its channels, or sigmoid
per channel). The engine blends the result channel by channel, whatever the head, and
:func:`split` names the parts again.
"""

from __future__ import annotations

import torch

from geoseg.model.bundle import BundleMeta


class Activation(torch.nn.Module):
    """Logits (N x channels x H x W) to every head's values, float32, in the same layout."""

    def __init__(self, meta: BundleMeta):
        super().__init__()
        self.parts = [
            (s, h.activation)
            for h, s in zip(meta.output_heads, meta.head_slices().values(), strict=True)
        ]

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if len(self.parts) == 1:  # one classes head: a softmax over every channel, as before
            return torch.softmax(logits, dim=1)
        out = [
            torch.softmax(logits[:, s], dim=1) if kind == "softmax" else torch.sigmoid(logits[:, s])
            for s, kind in self.parts
        ]
        return torch.cat(out, dim=1)


def split(values, meta: BundleMeta) -> dict:
    """``values`` (channels first after an optional batch axis) by head name."""
    axis = values.ndim - 3
    return {name: values[(slice(None),) * axis + (s,)] for name, s in meta.head_slices().items()}

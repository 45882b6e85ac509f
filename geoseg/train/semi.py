"""Semi-supervised training on pixels without labels: FixMatch (Sohn et al., NeurIPS 2020)
for dense prediction.

Each step draws crops from the unlabelled scenes (``training.unlabelled``). The model, in
evaluation mode and without gradients, predicts a *weak* view of each crop (a flip or
rotation); where its top class reaches ``threshold`` that class is the pixel's pseudo-label.
A *strong* view of the same crop (the same geometry, then per-band gain, offset and gamma,
noise and a cut-out square) goes through the model with the labelled batch, and its
cross-entropy towards the pseudo-labels, averaged over all valid unlabelled pixels (so an
uncertain model contributes little), is added with ``weight``. The confident share is
recorded per epoch (``unlabelled_confident``).

No library offers FixMatch for segmentation on multi-band rasters (the published code is
image-classification and torchvision-RGB specific), so the few steps are written here on
geoseg's own augmentation (:mod:`geoseg.train.augment`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geoseg.core.grid import Window
from geoseg.io.scene import Scene
from geoseg.model.bundle import BundleMeta
from geoseg.model.runner import normalize
from geoseg.train.augment import apply_per_band, draw_per_band
from geoseg.train.config import PerBandConfig, SemiConfig
from geoseg.train.data import SceneData

# The strong view's distortions (on standardised bands): wider than the labelled
# augmentation's defaults, as FixMatch's RandAugment is wider than its weak flips.
STRONG = PerBandConfig(gain=(0.6, 1.6), offset=(-0.5, 0.5), gamma=(0.6, 1.6), p=1.0)
STRONG_NOISE = 0.1  # standard deviation of added Gaussian noise
CUTOUT = (0.25, 0.5)  # side of the cut-out square, as a share of the crop


class Unlabelled:
    """The unlabelled scenes, read (and held in memory where they fit) like training scenes."""

    def __init__(self, cfg: SemiConfig, bands: list[int], crop: int, cache_bytes: int):
        self.cfg, self.crop = cfg, crop
        self.scenes: list[SceneData] = []
        for i, path in enumerate(cfg.scenes):
            scene = Scene.of(path)
            scene.check_bands(bands)
            d = SceneData(-1 - i, scene.paths[0], "unlabelled", scene, bands, None)
            if d.nbytes <= cache_bytes:
                d.load()
                cache_bytes -= d.nbytes
            self.scenes.append(d)
        area = np.array([d.height * d.width for d in self.scenes], dtype=np.float64)
        self.p = area / area.sum()

    def batch(
        self, n: int, meta: BundleMeta, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` weak views, their strong views and validity (n x h x w)."""
        weak, strong, valid = [], [], []
        for _ in range(n):
            d = self.scenes[int(rng.choice(len(self.scenes), p=self.p))]
            row = int(rng.integers(0, max(1, d.height - self.crop + 1)))
            col = int(rng.integers(0, max(1, d.width - self.crop + 1)))
            x, v, _ = d.read(Window(row, col, self.crop, self.crop))
            x = normalize(x, v, meta)
            k = int(rng.integers(4))  # the weak view: a rotation and maybe a flip
            x, v = np.rot90(x, k, axes=(1, 2)), np.rot90(v, k)
            if rng.random() < 0.5:
                x, v = x[:, :, ::-1], v[:, ::-1]
            x, v = np.ascontiguousarray(x), np.ascontiguousarray(v)
            weak.append(x)
            strong.append(strong_view(x, v, rng))
            valid.append(v)
        return (
            torch.from_numpy(np.stack(weak)),
            torch.from_numpy(np.stack(strong)),
            torch.from_numpy(np.stack(valid)),
        )


def strong_view(x: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-band gain, offset and gamma, noise and a cut-out square (set to the mean, 0)."""
    bands, h, w = x.shape
    y = apply_per_band(x, valid, *draw_per_band(bands, STRONG, rng))
    y = y + rng.normal(0, STRONG_NOISE, size=y.shape).astype(np.float32) * valid
    side = int(round(rng.uniform(*CUTOUT) * min(h, w)))
    r0, c0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    y[:, r0 : r0 + side, c0 : c0 + side] = 0.0
    return np.ascontiguousarray(y, dtype=np.float32)


def pseudo_labels(logits_weak: torch.Tensor, valid: torch.Tensor, threshold: float):
    """The weak view's top class and where it is confident (and valid)."""
    prob = torch.softmax(logits_weak.float(), dim=1)
    conf, label = prob.max(dim=1)
    return label, (conf >= threshold) & valid


def fixmatch_loss(
    logits_strong: torch.Tensor, label: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the strong view towards the confident pseudo-labels, averaged over
    all valid pixels."""
    ce = F.cross_entropy(logits_strong.float(), label, reduction="none")
    return (ce * mask).sum() / valid.sum().clamp(min=1)

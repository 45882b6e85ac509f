"""Training augmentation: random zoom (crops of another size resampled to the crop), the eight
D4 symmetries (flips, 90-degree rotations) and brightness/contrast jitter, applied per sample
to normalised bands."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from geoseg.train.config import AugmentConfig


def zoom_size(crop: int, cfg: AugmentConfig, rng: np.random.Generator) -> int:
    """Side of the window to read for one sample: ``crop`` times a log-uniform zoom factor."""
    if cfg.scale is None or cfg.scale[0] == cfg.scale[1] == 1:
        return crop
    lo, hi = math.log(cfg.scale[0]), math.log(cfg.scale[1])
    return max(8, round(crop * math.exp(rng.uniform(lo, hi))))


def resample(
    x: np.ndarray, valid: np.ndarray, y: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square sample resampled to ``size`` x ``size``: bands bilinearly (antialiased when
    shrinking), validity and labels by nearest neighbour (classes are never blended)."""
    n = x.shape[-1]
    if n == size:
        return x, valid, y
    xt = torch.from_numpy(np.ascontiguousarray(x))[None]
    x = F.interpolate(xt, size=(size, size), mode="bilinear", antialias=size < n)[0].numpy()
    idx = np.minimum(((np.arange(size) + 0.5) * (n / size)).astype(np.intp), n - 1)
    return x, valid[np.ix_(idx, idx)], y[np.ix_(idx, idx)]


def augment(
    x: np.ndarray, valid: np.ndarray, y: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Image (bands x h x w, normalised; invalid pixels 0) and labels (h x w), transformed
    alike; returns contiguous arrays."""
    if cfg.contrast > 0 or cfg.brightness > 0:
        bands = x.shape[0]
        gain = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, size=(bands, 1, 1))
        shift = rng.uniform(-cfg.brightness, cfg.brightness, size=(bands, 1, 1))
        x = (x * gain.astype(np.float32) + shift.astype(np.float32)) * valid
    if cfg.d4:
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, ::-1]
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)

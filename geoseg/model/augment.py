"""Training augmentation: the eight D4 symmetries (flips, 90-degree rotations) and
brightness/contrast jitter, applied per sample to normalised bands."""

from __future__ import annotations

import numpy as np

from geoseg.model.train_config import AugmentConfig


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

"""Per-band statistics for normalisation, ignoring nodata, read window by window."""

from __future__ import annotations

import numpy as np

from geoseg.grid import Window
from geoseg.io.scene import Scene


def band_stats(scene, bands: list[int], max_pixels: int = 4_000_000,
               window: int = 1024) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each band over valid pixels (a regular subsample of
    windows when the scene is larger than ``max_pixels``)."""
    sc = Scene.of(scene)
    info = sc.info
    n = np.zeros(len(bands))
    s1 = np.zeros(len(bands))
    s2 = np.zeros(len(bands))
    wins = [Window(r, c, min(window, info.height - r), min(window, info.width - c))
            for r in range(0, info.height, window) for c in range(0, info.width, window)]
    step = max(1, round(len(wins) * window * window / max_pixels))
    for w in wins[::step]:
        data, valid = sc.read(w, bands)
        v = data[:, valid].astype(np.float64)
        n += v.shape[1]
        s1 += v.sum(axis=1)
        s2 += (v * v).sum(axis=1)
    if not n.any():
        from geoseg.errors import GeoSegError

        raise GeoSegError("no valid pixels to compute band statistics from: the scene is all "
                          "nodata")
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return mean.tolist(), std.tolist()

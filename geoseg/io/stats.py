"""Per-band statistics for normalisation, ignoring nodata, read window by window."""

from __future__ import annotations

import numpy as np

from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene


def band_moments(
    scene,
    bands: list[int],
    max_pixels: int = 4_000_000,
    window: int = 1024,
    windows: list[Window] | None = None,
) -> np.ndarray:
    """Count, sum and sum of squares of each band's valid pixels (3 x bands, float64), over
    ``windows`` (default: the whole scene, cut into ``window``-pixel squares); a regular
    subsample of the windows when they hold more than ``max_pixels``. Moments of several
    scenes add up."""
    sc = Scene.of(scene)
    info = sc.info
    if windows is None:
        windows = _cut(Window(0, 0, info.height, info.width), window)
        total = len(windows) * window * window
    else:  # large windows are cut too, so the subsample stays spread out and reads stay small
        windows = [p for w in windows for p in _cut(w, window)]
        total = sum(w.size for w in windows)
    step = max(1, round(total / max_pixels)) if windows else 1
    m = np.zeros((3, len(bands)))
    for w in windows[::step]:
        data, valid = sc.read(w, bands)
        v = data[:, valid].astype(np.float64)
        m[0] += v.shape[1]
        m[1] += v.sum(axis=1)
        m[2] += (v * v).sum(axis=1)
    return m


def stats_from_moments(m: np.ndarray) -> tuple[list[float], list[float]]:
    """Mean and standard deviation from :func:`band_moments`."""
    n, s1, s2 = m
    if not n.any():
        raise GeoSegError(
            "no valid pixels to compute band statistics from: the scene is all nodata"
        )
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean**2, 1e-12))
    return mean.tolist(), std.tolist()


def band_stats(
    scene,
    bands: list[int],
    max_pixels: int = 4_000_000,
    window: int = 1024,
    windows: list[Window] | None = None,
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each band over valid pixels (of ``windows`` if given,
    else of the scene; a regular subsample of windows when larger than ``max_pixels``)."""
    return stats_from_moments(band_moments(scene, bands, max_pixels, window, windows))


def _cut(w: Window, size: int) -> list[Window]:
    return [
        Window(r, c, min(size, w.row_end - r), min(size, w.col_end - c))
        for r in range(w.row, w.row_end, size)
        for c in range(w.col, w.col_end, size)
    ]

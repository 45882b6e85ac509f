"""Per-band statistics for normalisation, ignoring nodata, read window by window."""

from __future__ import annotations

import numpy as np

from geoseg.core.grid import Window
from geoseg.core.radiometry import BandMapping, quantiles_of, radiometric_distance
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene


def sample_windows(
    scene,
    max_pixels: int = 4_000_000,
    window: int = 1024,
    windows: list[Window] | None = None,
) -> list[Window]:
    """The windows statistics are read from: ``windows`` (default: the whole scene) cut into
    ``window``-pixel squares, regularly subsampled when they hold more than ``max_pixels``."""
    if windows is None:
        info = Scene.of(scene).info
        cut = _cut(Window(0, 0, info.height, info.width), window)
        total = len(cut) * window * window
    else:  # large windows are cut too, so the subsample stays spread out and reads stay small
        cut = [p for w in windows for p in _cut(w, window)]
        total = sum(w.size for w in cut)
    step = max(1, round(total / max_pixels)) if cut else 1
    return cut[::step]


def band_moments(
    scene,
    bands: list[int],
    max_pixels: int = 4_000_000,
    window: int = 1024,
    windows: list[Window] | None = None,
    mapping: BandMapping | None = None,
) -> np.ndarray:
    """Count, sum and sum of squares of each band's valid pixels (3 x bands, float64), over
    :func:`sample_windows`, after ``mapping`` if given. Moments of several scenes add up."""
    sc = Scene.of(scene)
    m = np.zeros((3, len(bands)))
    for w in sample_windows(sc, max_pixels, window, windows):
        data, valid = sc.read(w, bands)
        if mapping is not None:
            mapping.apply(data)
        v = data[:, valid].astype(np.float64)
        m[0] += v.shape[1]
        m[1] += v.sum(axis=1)
        m[2] += (v * v).sum(axis=1)
    return m


def band_values(scene, bands: list[int], windows: list[Window], stride: int = 1) -> np.ndarray:
    """The valid pixels of each band in ``windows`` (bands x n, float32), every ``stride``-th
    row and column: the sample that band quantiles are computed from."""
    sc = Scene.of(scene)
    parts = [np.zeros((len(bands), 0), np.float32)]
    for w in windows:
        data, valid = sc.read(w, bands)
        data, valid = data[:, ::stride, ::stride], valid[::stride, ::stride]
        parts.append(data[:, valid].astype(np.float32))
    return np.concatenate(parts, axis=1)


def band_quantiles(
    scenes: list,
    bands: list[int],
    max_pixels: int = 4_000_000,
    windows: list[list[Window] | None] | None = None,
    mappings: list[BandMapping | None] | None = None,
) -> np.ndarray:
    """Quantiles (percentiles 0..100) of each band over the valid pixels of ``scenes`` (of
    ``windows[i]`` in scene i where given, after ``mappings[i]``): windows of up to
    ``max_pixels`` in all, every 2nd row and column of them."""
    windows = windows or [None] * len(scenes)
    mappings = mappings or [None] * len(scenes)
    budget = max(max_pixels // max(len(scenes), 1), 65536)
    values = []
    for s, w, m in zip(scenes, windows, mappings, strict=True):
        v = band_values(s, bands, sample_windows(s, budget, 512, w), stride=2)
        values.append(v if m is None else m.apply(v))
    return quantiles_of(np.concatenate(values, axis=1))


def spread_of(
    scenes: list,
    bands: list[int],
    pooled: np.ndarray,
    windows: list | None = None,
    mappings: list | None = None,
    max_pixels: int = 4_000_000,
) -> float:
    """How far the farthest of ``scenes`` lies from the ``pooled`` quantiles
    (:func:`~geoseg.core.radiometry.radiometric_distance`, largest band): the radiometric
    variety a model trained on them has met, which ``--normalize auto`` allows for. 0 for
    one scene."""
    if len(scenes) < 2:
        return 0.0
    windows = windows or [None] * len(scenes)
    mappings = mappings or [None] * len(scenes)
    budget = max(max_pixels // len(scenes), 65536)
    return max(
        float(radiometric_distance(band_quantiles([s], bands, budget, [w], [m]), pooled).max())
        for s, w, m in zip(scenes, windows, mappings, strict=True)
    )


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

"""``--normalize``: the scene's band statistics, sampled on the cluster, and the radiometric
mapping they give (:mod:`geoseg.core.radiometry`).

The sample is a regular subsample of windows over the whole scene (nodata ignored), read by
the workers in a few tasks and merged on the client, so it is the same whatever the number of
workers; the client reads no pixel itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from distributed import Client

from geoseg.cluster.tasks import run_tasks
from geoseg.core.radiometry import (
    NORMALIZE_MODES,
    BandMapping,
    choose_auto,
    match_mapping,
    quantiles_of,
    scene_mapping,
)
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene
from geoseg.io.stats import band_values, sample_windows
from geoseg.model.bundle import BundleMeta

SAMPLE_PIXELS = 2_000_000  # pixels of windows read; every 2nd row and column is kept
SAMPLE_WINDOW = 512
SAMPLE_STRIDE = 2
SAMPLE_TASKS = 8


def check_normalize(mode: str, meta: BundleMeta, model: str) -> str:
    """The mode to run: ``mode``, or ``scene`` for ``bundle`` with a bundle trained on
    per-scene standardised inputs. Refuses an unknown mode, and ``match`` with a bundle that
    stores no training quantiles (before any work starts)."""
    if mode not in NORMALIZE_MODES:
        raise GeoSegError(f"unknown --normalize {mode!r}: use one of {', '.join(NORMALIZE_MODES)}")
    if mode in ("bundle", "auto") and meta.normalization.mode == "per-scene":
        return "scene"  # the bundle's own normalisation is the scene's statistics
    if mode == "match" and meta.normalization.quantiles is None:
        raise GeoSegError(
            f"bundle {model} stores no training quantiles, which --normalize match needs: "
            f"add them with 'geoseg bundle stats {model} --from SCENE...' (the training "
            "scenes) or retrain it; --normalize scene works without them"
        )
    return mode


def scene_quantiles(client: Client, scene, bands: list[int]) -> np.ndarray:
    """Quantiles (:data:`~geoseg.core.radiometry.PERCENTILES`) of each band of ``scene``."""
    scene = Scene.of(scene)
    windows = sample_windows(scene, SAMPLE_PIXELS, SAMPLE_WINDOW)
    n = max(1, min(SAMPLE_TASKS, len(windows)))
    chunks = [windows[i::n] for i in range(n)]
    # the first failure is the answer (the others, cancelled, would only repeat it)
    items = [(ch, SAMPLE_STRIDE) for ch in chunks]
    doing = "reading sample windows of the scene"
    values = run_tasks(client, band_values, items, args=(scene, bands), doing=doing)
    return quantiles_of(np.concatenate(values, axis=1))


def radiometry_for(
    client: Client, scene, meta: BundleMeta, mode: str
) -> tuple[BandMapping | None, str, str]:
    """The mapping ``mode`` gives for ``scene`` and the bundle (None for ``bundle``), the
    mode it came to (``auto`` decides between ``bundle`` and ``scene`` by comparing the
    scene's band quantiles with the training ones) and why."""
    return mapping_for(meta, mode, lambda: scene_quantiles(client, scene, meta.bands))


def mapping_for(
    meta: BundleMeta, mode: str, quantiles: Callable[[], np.ndarray]
) -> tuple[BandMapping | None, str, str]:
    """:func:`radiometry_for` for any input: ``quantiles()`` gives its band quantiles, and
    is called only where the mode needs them."""
    if mode == "bundle":
        return None, "bundle", "asked for"
    norm = meta.normalization
    if mode == "auto" and norm.quantiles is None:
        return None, "bundle", "the bundle stores no training quantiles to compare the scene with"
    q = quantiles()
    reason = "asked for"
    if mode == "auto":
        mode, reason = choose_auto(q, np.asarray(norm.quantiles), norm.spread)
        if mode == "bundle":
            return None, mode, reason
    return _mapping(q, meta, mode), mode, reason


def _mapping(q: np.ndarray, meta: BundleMeta, mode: str) -> BandMapping:
    norm = meta.normalization
    train_q = None if norm.quantiles is None else np.asarray(norm.quantiles)
    if mode == "match":
        return match_mapping(q, train_q)
    return scene_mapping(q, train_q, norm.mean, norm.std)

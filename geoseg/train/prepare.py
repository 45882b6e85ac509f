"""What training reads before its first step: the scenes, their spatial splits, the window
sampler, and the band statistics of the training pixels (mean, standard deviation and
quantiles, which travel in the bundle); with ``training.normalize: per-scene``, each scene's
standardisation first."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from geoseg.core.classes import ClassList
from geoseg.core.radiometry import affine_mapping, location_scale
from geoseg.engine.radiometry import SAMPLE_PIXELS
from geoseg.errors import GeoSegError
from geoseg.io.stats import band_moments, band_quantiles, spread_of, stats_from_moments
from geoseg.train.config import TrainConfig
from geoseg.train.data import SceneData, open_scenes
from geoseg.train.sampling import WindowSampler, collect_anchors, split_scene
from geoseg.train.split import SceneSplit

STATS_MAX_PIXELS = 8_000_000


@dataclass
class TrainingData:
    scenes: list[SceneData]
    splits: list[SceneSplit]
    sampler: WindowSampler
    bands: list[int]
    class_pixels: np.ndarray  # labelled training pixels per class
    mean: list[float]
    std: list[float]
    quantiles: list[list[float]] | None = None  # percentiles 0..100 of the training pixels
    # how far the farthest training scene lies from the pooled radiometry (--normalize auto)
    spread: float | None = None


def prepare(cfg: TrainConfig, classes: ClassList) -> TrainingData:
    """Scenes, splits, window sampler and band statistics of the training pixels."""
    scenes, bands = open_scenes(cfg, classes)
    n = len(classes.classes)
    splits, anchors = [], []
    for d in scenes:
        sp = split_scene(cfg.split, d)
        splits.append(sp)
        anchors.append(collect_anchors(d, sp, n, seed=cfg.training.seed))
        if d.labels is not None and d.labels.unknown:
            warnings.warn(
                f"labels of {d.name} hold values that are neither class ids nor "
                f"ignore_values, treated as unlabelled: "
                f"{sorted(d.labels.unknown)[:8]}",
                stacklevel=2,
            )
    if not any(sp.has_val for sp in splits):
        raise GeoSegError(
            "no validation pixels: give a scene role: val, or role: split (the "
            "default) with a split"
        )
    sampler = WindowSampler(scenes, splits, anchors, cfg.training.crop, cfg.training.sampling)
    with_train = [(d, sp) for d, sp in zip(scenes, splits, strict=True) if sp.has_train]
    if cfg.training.normalize == "per-scene":
        _per_scene(scenes, bands)
    budget = max(STATS_MAX_PIXELS // len(with_train), 65536)
    moments = sum(
        band_moments(d.scene, bands, budget, windows=sp.train, mapping=d.radiometry)
        for d, sp in with_train
    )
    mean, std = stats_from_moments(moments)
    q = band_quantiles(
        [d.scene for d, _ in with_train],
        bands,
        STATS_MAX_PIXELS,
        [sp.train for _, sp in with_train],
        [d.radiometry for d, _ in with_train],
    )
    spread = spread_of(
        [d.scene for d, _ in with_train],
        bands,
        q,
        [sp.train for _, sp in with_train],
        [d.radiometry for d, _ in with_train],
        STATS_MAX_PIXELS,
    )
    return TrainingData(
        scenes, splits, sampler, bands, sampler.class_pixels, mean, std, q.tolist(), spread
    )


def _per_scene(scenes: list[SceneData], bands: list[int]) -> None:
    """training.normalize: per-scene: each scene's band median and spread (sampled as
    ``--normalize scene`` samples a scene to predict) moved onto their means over the scenes,
    so the model sees scene-relative inputs."""
    stats = [location_scale(band_quantiles([d.scene], bands, SAMPLE_PIXELS)) for d in scenes]
    loc = np.mean([s[0] for s in stats], axis=0)
    scale = np.mean([s[1] for s in stats], axis=0)
    for d, (lo, sc) in zip(scenes, stats, strict=True):
        d.set_radiometry(affine_mapping(scale / sc, loc - scale / sc * lo, mode="per-scene"))

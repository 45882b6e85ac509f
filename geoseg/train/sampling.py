"""Random training windows, optionally class-balanced, that never touch validation pixels.

Labels are scanned once, window by window: per scene and class, a uniform random sample (a
reservoir of at most ``cap`` pixels) of the labelled pixels with valid image data outside
validation and its buffer, and their counts. A training window is drawn around one of these
*anchor* pixels at a random offset: ``random`` picks the class in proportion to its pixels (so
every labelled pixel is about equally likely), ``balanced`` picks the class uniformly first.
Windows that would reach a validation pixel or its buffer are rejected and drawn again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.train.config import SplitConfig
from geoseg.train.data import SceneData
from geoseg.train.labels import IGNORE
from geoseg.train.split import SceneSplit, block_grid, make_split

SCAN = 1024  # label scan window


def scan_windows(height: int, width: int, step: int = SCAN) -> Iterator[Window]:
    for r in range(0, height, step):
        for c in range(0, width, step):
            yield Window(r, c, min(step, height - r), min(step, width - c))


def labelled_per_block(d: SceneData, block: int) -> np.ndarray:
    """Labelled pixels in each ``block`` x ``block`` square of the scene."""
    out = np.zeros(block_grid(d.height, d.width, block), dtype=np.int64)
    step = block * max(1, SCAN // block)
    for w in scan_windows(d.height, d.width, step):
        lab = d.read_labels(w) != IGNORE
        nr, nc = -(-w.height // block), -(-w.width // block)
        pad = np.zeros((nr * block, nc * block), dtype=np.int64)
        pad[: w.height, : w.width] = lab
        i, j = w.row // block, w.col // block
        out[i : i + nr, j : j + nc] += pad.reshape(nr, block, nc, block).sum(axis=(1, 3))
    return out


def split_scene(cfg: SplitConfig, d: SceneData) -> SceneSplit:
    """The scene's split (blocks mode: validation blocks drawn among those with labels)."""
    blocks = (
        labelled_per_block(d, cfg.block) if d.role == "split" and cfg.mode == "blocks" else None
    )
    return make_split(cfg, d.role, d.height, d.width, blocks, cfg.seed, d.index)


@dataclass
class Anchors:
    """Labelled training pixels of one scene: per class, a sample of (row, col) and the count."""

    coords: list[np.ndarray]  # per class, (k, 2) int64
    counts: np.ndarray  # per class, all labelled training pixels


def collect_anchors(
    d: SceneData, split: SceneSplit, n_classes: int, cap: int = 50_000, seed: int = 0
) -> Anchors:
    counts = np.zeros(n_classes, dtype=np.int64)
    keys = [np.zeros(0) for _ in range(n_classes)]
    coords = [np.zeros((0, 2), dtype=np.int64) for _ in range(n_classes)]
    if not split.has_train:
        return Anchors(coords, counts)
    rng = np.random.default_rng([seed, d.index, 7])
    for w in scan_windows(d.height, d.width):
        _, _, y = d.read(w)  # labelled pixels with valid image data
        ok = (y != IGNORE) & ~split.forbidden_mask(w)
        rr, cc = np.nonzero(ok)
        cls = y[rr, cc]
        counts += np.bincount(cls, minlength=n_classes)[:n_classes]
        key = rng.random(len(rr))
        for c in np.unique(cls):
            sel = cls == c
            k = np.concatenate([keys[c], key[sel]])
            xy = np.concatenate([coords[c], np.stack([rr[sel] + w.row, cc[sel] + w.col], 1)])
            if len(k) > cap:
                keep = np.argpartition(k, cap)[:cap]
                k, xy = k[keep], xy[keep]
            keys[c], coords[c] = k, xy
    return Anchors(coords, counts)


class WindowSampler:
    """Draws (scene index, crop window) pairs for training."""

    def __init__(
        self,
        scenes: list[SceneData],
        splits: list[SceneSplit],
        anchors: list[Anchors],
        crop: int,
        mode: str = "random",
        max_tries: int = 2000,
    ):
        self.scenes, self.splits, self.anchors = scenes, splits, anchors
        self.crop, self.max_tries = crop, max_tries
        counts = np.array([a.counts for a in anchors], dtype=np.float64)  # scenes x classes
        have = np.array([[len(x) > 0 for x in a.coords] for a in anchors])
        counts[~have] = 0
        self.class_pixels = counts.sum(axis=0)
        if not self.class_pixels.any():
            raise GeoSegError(
                "no labelled training pixels: every label lies in validation, "
                "its buffer, or is unlabelled (check labels, ignore_values, split)"
            )
        present = self.class_pixels > 0
        if mode == "balanced":
            self.class_p = present / present.sum()
        else:
            self.class_p = self.class_pixels / self.class_pixels.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            self.scene_p = np.nan_to_num(counts / counts.sum(axis=0, keepdims=True)).T

    def place(
        self, d: SceneData, row: int, col: int, rng: np.random.Generator, size: int | None = None
    ) -> Window:
        """A square of ``size`` (default: the crop) holding pixel (row, col) at a random
        offset, inside the scene where the scene is at least that wide (else from 0, mirrored
        beyond the border)."""
        c = size or self.crop
        r0 = int(np.clip(row - rng.integers(0, c), 0, max(d.height - c, 0)))
        c0 = int(np.clip(col - rng.integers(0, c), 0, max(d.width - c, 0)))
        return Window(r0, c0, c, c)

    def sample(self, rng: np.random.Generator, size: int | None = None) -> tuple[int, Window]:
        """A scene index and a training window of ``size`` (default: the crop); a zoomed
        window that cannot be placed clear of validation falls back to the crop."""
        n = len(self.class_p)
        for _ in range(self.max_tries):
            k = int(rng.choice(n, p=self.class_p))
            s = int(rng.choice(len(self.scenes), p=self.scene_p[k]))
            xy = self.anchors[s].coords[k]
            r, c = xy[rng.integers(len(xy))]
            w = self.place(self.scenes[s], int(r), int(c), rng, size)
            if self.splits[s].allowed(w):
                return s, w
        if size and size > self.crop:
            return self.sample(rng)
        raise GeoSegError(
            f"cannot place training windows of {size or self.crop} pixels clear of the "
            "validation pixels and their buffer: use a smaller training.crop or "
            "split.buffer, or a larger split.block"
        )

"""Spatial train/validation split of one scene, with a buffer between the two.

Validation pixels are a set of rectangles. A training window is allowed only if it stays clear
of every validation rectangle grown by ``buffer`` pixels on each side, so no validation pixel,
nor any pixel within ``buffer`` of one, is ever seen in training, not even as input context.

* ``blocks``: the scene is cut into ``block`` x ``block`` squares; a seeded ``val_fraction``
  of the squares holding labels validates, the rest trains;
* ``halves``: the west half trains and the east half validates (``axis: y``: north / south);
* role ``train`` / ``val``: the whole scene trains / validates; ``test``: neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.train.config import SplitConfig


@dataclass(frozen=True)
class SceneSplit:
    height: int
    width: int
    buffer: int
    val: np.ndarray  # (k, 4) int64 rectangles: row0, col0, row1, col1 (end exclusive)
    train: list[Window] = field(default_factory=list)  # rectangles holding no validation pixel

    @property
    def has_val(self) -> bool:
        return len(self.val) > 0

    @property
    def has_train(self) -> bool:
        return bool(self.train)

    def allowed(self, w: Window) -> bool:
        """Whether the training window ``w`` keeps clear of validation and its buffer."""
        if not self.has_train:
            return False
        if not self.has_val:
            return True
        b, v = self.buffer, self.val
        hit = (
            (v[:, 0] - b < w.row_end)
            & (v[:, 2] + b > w.row)
            & (v[:, 1] - b < w.col_end)
            & (v[:, 3] + b > w.col)
        )
        return not hit.any()

    def _paint(self, w: Window, grow: int) -> np.ndarray:
        out = np.zeros((w.height, w.width), dtype=bool)
        if not self.has_val:
            return out
        v = self.val
        r0 = np.clip(v[:, 0] - grow - w.row, 0, w.height)
        r1 = np.clip(v[:, 2] + grow - w.row, 0, w.height)
        c0 = np.clip(v[:, 1] - grow - w.col, 0, w.width)
        c1 = np.clip(v[:, 3] + grow - w.col, 0, w.width)
        for i in np.flatnonzero((r1 > r0) & (c1 > c0)):
            out[r0[i] : r1[i], c0[i] : c1[i]] = True
        return out

    def val_mask(self, w: Window) -> np.ndarray:
        """Validation pixels in ``w`` (False beyond the scene)."""
        m = self._paint(w, 0)
        _outside_false(m, w, self.height, self.width)
        return m

    def forbidden_mask(self, w: Window) -> np.ndarray:
        """Validation pixels grown by the buffer, over ``w``."""
        return self._paint(w, self.buffer)


def _outside_false(m: np.ndarray, w: Window, height: int, width: int) -> None:
    m[max(0, height - w.row) :] = False
    m[:, max(0, width - w.col) :] = False
    m[: max(0, -w.row)] = False
    m[:, : max(0, -w.col)] = False


def block_grid(height: int, width: int, block: int) -> tuple[int, int]:
    return -(-height // block), -(-width // block)


def make_split(
    cfg: SplitConfig,
    role: str,
    height: int,
    width: int,
    labelled_blocks: np.ndarray | None = None,
    seed: int = 0,
    index: int = 0,
) -> SceneSplit:
    """The split of one scene. ``labelled_blocks`` (blocks mode): labelled pixels per block,
    shape :func:`block_grid`; validation blocks are drawn among those with labels, by a
    generator seeded with ``seed`` and the scene's ``index``."""
    whole = Window(0, 0, height, width)
    all_rect = np.array([[0, 0, height, width]], dtype=np.int64)
    none = np.zeros((0, 4), dtype=np.int64)
    if role == "train":
        return SceneSplit(height, width, cfg.buffer, none, [whole])
    if role == "val":
        return SceneSplit(height, width, cfg.buffer, all_rect, [])
    if role == "test":
        return SceneSplit(height, width, cfg.buffer, none, [])
    if cfg.mode == "halves":
        if cfg.axis == "x":
            mid = width // 2
            val = np.array([[0, mid, height, width]], dtype=np.int64)
            train = [Window(0, 0, height, mid)]
        else:
            mid = height // 2
            val = np.array([[mid, 0, height, width]], dtype=np.int64)
            train = [Window(0, 0, mid, width)]
        if mid < 1:
            raise GeoSegError(f"a {height}x{width} scene is too small to split in halves")
        return SceneSplit(height, width, cfg.buffer, val, train)
    nbr, nbc = block_grid(height, width, cfg.block)
    if labelled_blocks is None:
        labelled_blocks = np.ones((nbr, nbc), dtype=np.int64)
    cand = np.flatnonzero(labelled_blocks.ravel() > 0)
    if len(cand) < 2:
        raise GeoSegError(
            f"only {len(cand)} block(s) of {cfg.block} pixels hold labels: use "
            "a smaller split.block, or split: {mode: halves}"
        )
    n_val = min(len(cand) - 1, max(1, round(cfg.val_fraction * len(cand))))
    rng = np.random.default_rng([seed, index, 104729])
    is_val = np.zeros(nbr * nbc, dtype=bool)
    is_val[rng.permutation(cand)[:n_val]] = True
    val, train = [], []
    b = cfg.block
    for k in range(nbr * nbc):
        i, j = divmod(k, nbc)
        r0, c0 = i * b, j * b
        r1, c1 = min(r0 + b, height), min(c0 + b, width)
        if is_val[k]:
            val.append((r0, c0, r1, c1))
        else:
            train.append(Window(r0, c0, r1 - r0, c1 - c0))
    return SceneSplit(height, width, cfg.buffer, np.array(val, dtype=np.int64), train)

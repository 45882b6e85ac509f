"""Fixed-point blending and argmax in torch, on the device that predicted the tiles.

The arithmetic is exactly that of :mod:`geoseg.core.blend` (float32 products, round half to even,
int32 sums; float64 division for probabilities), so the sums and the class maps are
bit-identical to the numpy path whichever one ran. ``geoseg.core`` stays free of torch; this is
its twin on the model side.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from geoseg.core.blend import SCALE, tile_weights
from geoseg.core.grid import TileGrid, Window

_WEIGHTS: dict[tuple, torch.Tensor] = {}
_FIXED: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _key(grid: TileGrid, ti: int, tj: int, dev: torch.device) -> tuple:
    # the weights depend on the grid only through tile, overlap and which sides are tapered,
    # so at most 16 tensors per grid geometry and device
    nt = grid.shape
    return (grid.tile, grid.overlap, ti > 0, ti < nt[0] - 1, tj > 0, tj < nt[1] - 1, dev)


def device_weights(grid: TileGrid, ti: int, tj: int, device) -> torch.Tensor:
    """Weights of tile (ti, tj) as a float32 tensor on ``device`` (cached, do not modify)."""
    dev = torch.device(device)
    key = _key(grid, ti, tj, dev)
    w = _WEIGHTS.get(key)
    if w is None:
        w = _WEIGHTS.setdefault(key, torch.from_numpy(tile_weights(grid, ti, tj)).to(dev))
    return w


def fixed_weights(grid: TileGrid, ti: int, tj: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The tile's weights scaled to fixed point (float32) and their rounded sums (int32),
    cached: the per-tile work left is one multiply, one round and two adds."""
    dev = torch.device(device)
    key = _key(grid, ti, tj, dev)
    f = _FIXED.get(key)
    if f is None:
        ws = device_weights(grid, ti, tj, dev) * SCALE
        f = _FIXED.setdefault(key, (ws, torch.round(ws).to(torch.int32)))
    return f


_local = threading.local()


def _reused_zeros(shape: tuple[int, ...]) -> torch.Tensor:
    """Int32 zeros of ``shape`` on the CPU, in memory this thread used for the last block of
    the same shape: a fresh calloc'ed array is zeroed page by page as the blending first
    touches it, which made the blending of a block 2-4x slower next to a real model (the
    model's memory churn returns those pages to the OS between blocks). One buffer per
    thread: a thread runs one block task at a time, and nothing of the accumulator outlives
    its block (its results are copies)."""
    held = getattr(_local, "zeros", None)
    if held is not None and tuple(held.shape) == shape:
        return held.zero_()
    _local.zeros = None  # the old one freed before the new one is made
    _local.zeros = torch.from_numpy(np.zeros(shape, dtype=np.int32))
    return _local.zeros


class TorchAccumulator:
    """Fixed-point sums of weighted class probabilities (channels 0..C-1) and of weights
    (channel C) over a window of the scene, held as an int32 tensor on ``device``."""

    def __init__(self, window: Window, n_classes: int, device):
        self.window = window
        self.n_classes = n_classes
        self.device = torch.device(device)
        shape = (n_classes + 1, window.height, window.width)
        self._buffers: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        if self.device.type == "cpu":
            self.data = _reused_zeros(shape)
        else:
            self.data = torch.zeros(shape, dtype=torch.int32, device=self.device)

    def add_tile(self, probs: torch.Tensor, weights: torch.Tensor, tile_window: Window) -> None:
        """Add one tile's probabilities (C x T x T float32) with its weights (T x T float32)."""
        if probs.dtype != torch.float32 or weights.dtype != torch.float32:
            # other dtypes would round differently from the numpy path
            raise TypeError(
                f"probs and weights must be float32, got {probs.dtype}, {weights.dtype}"
            )
        ws = weights * SCALE  # a power of two: exact, stays float32
        self.add_fixed(probs, ws, torch.round(ws).to(torch.int32), tile_window)

    def add_fixed(
        self, probs: torch.Tensor, ws: torch.Tensor, wi: torch.Tensor, tile_window: Window
    ) -> None:
        """:meth:`add_tile` with the weights already in fixed point (:func:`fixed_weights`)."""
        inter = tile_window.intersect(self.window)
        if inter is None:
            return
        ts = inter.slices((tile_window.row, tile_window.col))
        ds = inter.slices((self.window.row, self.window.col))
        dst = self.data[:, ds[0], ds[1]]
        p = probs[:, ts[0], ts[1]]
        q, qi = self._scratch(p.shape)
        # torch.round is half-to-even like np.rint; products are <= 2**24 so int32 is exact
        torch.mul(p, ws[ts], out=q)
        q.round_()
        qi.copy_(q)
        dst[: self.n_classes] += qi
        dst[self.n_classes] += wi[ts]

    def _scratch(self, shape) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 and int32 buffers of ``shape``, reused from tile to tile: allocating them
        afresh (~6 MB each, fresh pages every time) made blending 3-4x slower on a CPU."""
        key = tuple(shape)
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) > 8:  # edge tiles of many shapes: keep the memory bounded
                self._buffers.clear()
            buf = self._buffers[key] = (
                torch.empty(key, dtype=torch.float32, device=self.device),
                torch.empty(key, dtype=torch.int32, device=self.device),
            )
        return buf

    def add_tiles(self, probs: torch.Tensor, weights, windows) -> None:
        """Add a batch: probs N x C x T x T, one weights tensor and one window per tile."""
        for p, w, win in zip(probs, weights, windows, strict=True):
            self.add_tile(p, w, win)

    def patch(self, window: Window) -> np.ndarray:
        """A CPU copy of the sums over ``window`` (which must lie inside this accumulator)."""
        s = window.slices((self.window.row, self.window.col))
        return np.ascontiguousarray(self.data[:, s[0], s[1]].to("cpu", copy=True).numpy())

    def numpy(self) -> np.ndarray:
        """A CPU copy of all the sums (C+1 x h x w int32)."""
        return self.data.to("cpu", copy=True).numpy()


def finalize_torch(
    sums: torch.Tensor,
    class_ids: np.ndarray,
    valid: np.ndarray,
    nodata: int,
    want_probs: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`geoseg.core.blend.finalize` computed on ``sums``' device; results on the CPU."""
    dev = sums.device
    n = len(class_ids)  # other heads' channels follow the classes'; the weight is last
    ok = torch.from_numpy(np.ascontiguousarray(valid, dtype=bool)).to(dev)
    idx = torch.argmax(sums[:n], dim=0)  # ties: first maximal index, as numpy
    cls = torch.from_numpy(np.ascontiguousarray(class_ids.astype(np.uint8))).to(dev)[idx]
    cls[~ok] = nodata
    probs = None
    if want_probs:
        # float64 throughout (CUDA divides doubles correctly rounded), as the numpy path
        wsum = torch.clamp(sums[-1], min=1).to(torch.float64)
        p = torch.round(sums[:n].to(torch.float64) / wsum * 254.0).clamp(0, 254).to(torch.uint8)
        p[:, ~ok] = 255
        probs = p.cpu().numpy()
    return cls.cpu().numpy(), probs

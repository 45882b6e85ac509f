"""Overviews of a class raster computed block by block: each level the mode of 2 x 2 pixels of
the level below, nodata left out unless all four are nodata, ties to the smallest class id.

GDAL's MODE overviews of a whole raster cost the COG assembly about half its time and can only
start once every block is in (BENCHMARKS.md, issue 29); a 2 x 2 mode needs no neighbour, so
each block's pyramid is computed as the block arrives and the assembly only copies it. A block
aligned on 2^L pixels (or ending at the raster's edge) gives exactly its part of levels 1..L, so
the pyramid is the same for any block size. Written by hand: no library offers a block-wise,
nodata-aware mode decimation.
"""

from __future__ import annotations

import numpy as np


def level_shapes(height: int, width: int, tile: int = 512) -> list[tuple[int, int]]:
    """The overview sizes GDAL's COG driver makes for a raster of ``tile``-pixel blocks: halved
    (rounding up) until both sides fit in one block."""
    shapes = []
    h, w = height, width
    while h > tile or w > tile:
        h, w = (h + 1) // 2, (w + 1) // 2
        shapes.append((h, w))
    return shapes


def mode2x2(a: np.ndarray, nodata: int | None) -> np.ndarray:
    """The 2 x 2 mode of ``a`` (2-D integer), ``ceil(h/2) x ceil(w/2)``: the most frequent
    value of each 2 x 2 cell other than ``nodata`` (the smallest on a tie), ``nodata`` where the
    cell holds nothing else; an odd last row or column is a cell of 2 or 1 pixels."""
    h, w = a.shape
    if h % 2 or w % 2:  # pad with nodata (or a copy of the edge where there is none)
        fill = nodata if nodata is not None else None
        a = np.pad(a, ((0, h % 2), (0, w % 2)), mode="edge" if fill is None else "constant",
                   **({} if fill is None else {"constant_values": fill}))  # fmt: skip
    # the cell's four pixels as contiguous arrays, and how many of the others equal each
    q = [np.ascontiguousarray(a[i::2, j::2]) for i in (0, 1) for j in (0, 1)]
    e = {(i, j): (q[i] == q[j]).view(np.uint8) for i in range(4) for j in range(i + 1, 4)}
    best = q[0].copy()
    best_n = e[0, 1] + e[0, 2] + e[0, 3]
    if nodata is not None:  # nodata is never the mode of a cell with anything else
        best_n = np.where(q[0] == nodata, np.uint8(0), best_n + np.uint8(1))
    for i in (1, 2, 3):
        n = sum(e[min(i, j), max(i, j)] for j in range(4) if j != i)
        if nodata is not None:
            n = np.where(q[i] == nodata, np.uint8(0), n + np.uint8(1))
        take = (n > best_n) | ((n == best_n) & (q[i] < best))
        np.copyto(best, q[i], where=take)
        np.maximum(best_n, n, out=best_n)
    if nodata is not None:
        best[best_n == 0] = nodata
    return best


def block_levels(block: np.ndarray, levels: int, nodata: int | None) -> list[np.ndarray]:
    """Levels 1..``levels`` of one block, each the :func:`mode2x2` of the one before."""
    out, a = [], block
    for _ in range(levels):
        a = mode2x2(a, nodata)
        out.append(a)
    return out


def aligned(
    row: int, col: int, height: int, width: int, shape: tuple[int, int], levels: int
) -> bool:
    """Whether the block at ``row, col`` of ``height x width`` (in a raster of ``shape``) gives
    its part of every level up to ``levels`` alone: its corner on the 2^levels lattice and each
    side a multiple of it, or reaching the raster's edge."""
    step = 1 << levels
    if row % step or col % step:
        return False
    return (height % step == 0 or row + height == shape[0]) and (
        width % step == 0 or col + width == shape[1]
    )

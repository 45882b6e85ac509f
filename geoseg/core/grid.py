"""The global tile grid and the output blocks aligned to it, on scene pixel coordinates.

Tiles have origins at multiples of the stride (tile - overlap) from the scene's top-left corner,
so every pixel is predicted by the same tiles whatever the block size, worker count or scheduler.
Blocks are whole runs of tiles: a block *owns* the tiles whose origin lies inside it, so each tile
is evaluated exactly once in a job. A tile reaches at most ``overlap`` pixels into the next block
to the right and below; those strips of accumulated probabilities are exchanged at assembly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A rectangle in scene pixels: rows [row, row + height), cols [col, col + width)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def row_end(self) -> int:
        return self.row + self.height

    @property
    def col_end(self) -> int:
        return self.col + self.width

    @property
    def size(self) -> int:
        return self.height * self.width

    def intersect(self, other: Window) -> Window | None:
        r0, c0 = max(self.row, other.row), max(self.col, other.col)
        r1, c1 = min(self.row_end, other.row_end), min(self.col_end, other.col_end)
        if r1 <= r0 or c1 <= c0:
            return None
        return Window(r0, c0, r1 - r0, c1 - c0)

    def slices(self, origin: tuple[int, int] = (0, 0)) -> tuple[slice, slice]:
        """Slices selecting this window in an array whose [0, 0] is scene pixel ``origin``."""
        r, c = self.row - origin[0], self.col - origin[1]
        return slice(r, r + self.height), slice(c, c + self.width)


def n_tiles(size: int, tile: int, stride: int) -> int:
    """Number of tiles of ``tile`` pixels at ``stride`` needed to cover ``size`` pixels."""
    return 1 if size <= tile else 1 + math.ceil((size - tile) / stride)


def symmetric_index(idx: np.ndarray, size: int) -> np.ndarray:
    """Map indices outside [0, size) into it by mirroring with the edge repeated (numpy's
    'symmetric' pad). Defined on the whole scene, so a padded tile is identical whichever block
    reads it, and valid for any size >= 1."""
    period = 2 * size
    m = np.mod(idx, period)
    return np.where(m < size, m, period - 1 - m)


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    tile: int = 512
    overlap: int = 64

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"scene must be at least 1x1 pixels, got {self.height}x{self.width}")
        if self.tile < 32 or self.tile % 32:
            raise ValueError(f"tile must be a multiple of 32 (>= 32), got {self.tile}")
        if not 0 <= self.overlap <= self.tile // 2:
            raise ValueError(
                f"overlap must be between 0 and tile/2 ({self.tile // 2}), got {self.overlap}"
            )

    @property
    def stride(self) -> int:
        return self.tile - self.overlap

    @property
    def shape(self) -> tuple[int, int]:
        """Number of tiles along rows and columns."""
        return (
            n_tiles(self.height, self.tile, self.stride),
            n_tiles(self.width, self.tile, self.stride),
        )

    def tile_window(self, ti: int, tj: int) -> Window:
        """The full (possibly beyond-scene) window of tile (ti, tj)."""
        return Window(ti * self.stride, tj * self.stride, self.tile, self.tile)

    @property
    def scene(self) -> Window:
        return Window(0, 0, self.height, self.width)


@dataclass(frozen=True)
class Block:
    """One output block: the tiles it owns and the scene pixels it writes."""

    bi: int
    bj: int
    tiles_rows: range
    tiles_cols: range
    region: Window  # pixels this block writes in the output
    extent: Window  # pixels its tiles touch, clipped to the scene (region + spill right/below)
    read: Window  # pixels its tiles cover, not clipped (beyond-scene parts are mirrored)

    @property
    def key(self) -> str:
        return f"b{self.bi:05d}_{self.bj:05d}"


@dataclass(frozen=True)
class BlockGrid:
    grid: TileGrid
    tiles_per_block: int

    @classmethod
    def from_block_size(cls, grid: TileGrid, block: int) -> BlockGrid:
        """Blocks of about ``block`` pixels, rounded to a whole number of tile strides."""
        if block < 1:
            raise ValueError(f"block must be positive, got {block}")
        return cls(grid, max(1, round(block / grid.stride)))

    @property
    def block_pixels(self) -> int:
        return self.tiles_per_block * self.grid.stride

    @property
    def shape(self) -> tuple[int, int]:
        nt = self.grid.shape
        k = self.tiles_per_block
        return (math.ceil(nt[0] / k), math.ceil(nt[1] / k))

    def __len__(self) -> int:
        s = self.shape
        return s[0] * s[1]

    def block(self, bi: int, bj: int) -> Block:
        g, k = self.grid, self.tiles_per_block
        nb, nt = self.shape, g.shape
        rows = range(bi * k, min((bi + 1) * k, nt[0]))
        cols = range(bj * k, min((bj + 1) * k, nt[1]))
        r0, c0 = rows.start * g.stride, cols.start * g.stride
        r1 = g.height if bi == nb[0] - 1 else rows.stop * g.stride
        c1 = g.width if bj == nb[1] - 1 else cols.stop * g.stride
        read_r1 = (rows.stop - 1) * g.stride + g.tile
        read_c1 = (cols.stop - 1) * g.stride + g.tile
        return Block(
            bi,
            bj,
            rows,
            cols,
            region=Window(r0, c0, r1 - r0, c1 - c0),
            extent=Window(r0, c0, min(read_r1, g.height) - r0, min(read_c1, g.width) - c0),
            read=Window(r0, c0, read_r1 - r0, read_c1 - c0),
        )

    def __iter__(self) -> Iterator[Block]:
        nb = self.shape
        for bi in range(nb[0]):
            for bj in range(nb[1]):
                yield self.block(bi, bj)

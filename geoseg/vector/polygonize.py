"""Worker side of vectorization: one task polygonizes one block of the class raster.

The task reads its own window, runs GDAL's polygonizer on it (``rasterio.features.shapes``) and
turns the result into shapely geometries in scene pixel coordinates without a per-polygon
shapely call (one ``from_ragged_array`` for the block). Pieces that touch no internal block
edge are complete: when nothing global follows (no MMU, no simplification) they are finished
here, in world coordinates with their area and perimeter, and sent as WKB. Pieces touching an
internal edge (or all of them when a global step follows) stay in pixel coordinates for the
client to merge.
"""

from __future__ import annotations

import array
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import rasterio
import shapely
from affine import Affine
from rasterio import features
from rasterio.windows import Window as RioWindow

from geoseg.core.grid import Window
from geoseg.vector.polygons import as_multi, fix_pixel_polygons, geod_for, measure, to_world


@dataclass(frozen=True)
class VectorJob:
    """What a block task needs; small, sent with every task."""

    raster: str
    height: int
    width: int
    block: int
    nodata: float | None
    transform: tuple[float, ...]  # affine a, b, c, d, e, f
    connectivity: int = 4
    finish_interior: bool = True  # finish complete pieces in the task (no global step follows)
    metres_per_unit: float | None = 1.0
    geographic_crs: str | None = None  # WKT of a geographic CRS: measure on its ellipsoid
    confidence: str | None = None
    confidence_nodata: float | None = None

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    def windows(self) -> list[Window]:
        """Blocks of at most ``block`` pixels a side, of even sizes (no thin last row or
        column of blocks: tasks take similar times and balance across workers)."""
        rows, cols = _splits(self.height, self.block), _splits(self.width, self.block)
        return [
            Window(r0, c0, r1 - r0, c1 - c0)
            for r0, r1 in zip(rows[:-1], rows[1:], strict=True)
            for c0, c1 in zip(cols[:-1], cols[1:], strict=True)
        ]


def _splits(size: int, block: int) -> list[int]:
    n = -(-size // block)
    return [size * i // n for i in range(n + 1)]


@dataclass
class PieceSet:
    """Polygons with their class and the confidence sums that add up when pieces merge."""

    wkb: pa.Array  # WKB (large_binary: a layer's total may pass 2 GB)
    cls: np.ndarray
    conf_sum: np.ndarray
    conf_n: np.ndarray
    edge: np.ndarray | None = None  # open pieces: touches an internal block edge
    area_ha: np.ndarray | None = None  # finished pieces
    perim_m: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.cls)


@dataclass
class BlockResult:
    window: Window
    done: PieceSet  # finished, world coordinates
    open: PieceSet  # pixel coordinates, for the client
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)


def wkb_array(geoms: np.ndarray) -> pa.Array:
    return pa.array(shapely.to_wkb(geoms), type=pa.large_binary())


def _offsets(lengths) -> np.ndarray:
    off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=off[1:])
    return off


@dataclass
class Ragged:
    """Polygons as shapely's ragged arrays: coordinates, ring offsets, polygon offsets."""

    xy: np.ndarray
    rings: np.ndarray
    polys: np.ndarray

    def subset(self, keep: np.ndarray) -> Ragged:
        ring_keep = np.repeat(keep, np.diff(self.polys))
        coord_keep = np.repeat(ring_keep, np.diff(self.rings))
        return Ragged(
            self.xy[coord_keep],
            _offsets(np.diff(self.rings)[ring_keep]),
            _offsets(np.diff(self.polys)[keep]),
        )

    def geoms(self, transform: Affine | None = None) -> np.ndarray:
        xy = self.xy
        if transform is not None:
            a, b, c, d, e, f = transform[:6]
            xy = np.column_stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f])
        return shapely.from_ragged_array(shapely.GeometryType.POLYGON, xy, (self.rings, self.polys))

    def bounds(self) -> np.ndarray:
        """(xmin, ymin, xmax, ymax) of each polygon, rows."""
        start = self.rings[self.polys[:-1]]
        if not len(start):
            return np.zeros((0, 4))
        x, y = self.xy[:, 0], self.xy[:, 1]
        return np.column_stack(
            [
                np.minimum.reduceat(x, start),
                np.minimum.reduceat(y, start),
                np.maximum.reduceat(x, start),
                np.maximum.reduceat(y, start),
            ]
        )


def _flatten(shapes, keep_dicts: bool) -> tuple[Ragged, np.ndarray, list]:
    """GeoJSON-like polygons from ``shapes`` into ragged arrays, their values (and the dicts if
    asked). Written out because shapes yields nested Python lists, and making one geometry per
    polygon with shapely.geometry.shape is ~4x slower than one from_ragged_array call."""
    buf = array.array("d")
    extend, chain = buf.extend, itertools.chain.from_iterable
    ring_len: list[int] = []
    n_rings: list[int] = []
    values: list[float] = []
    dicts: list = []
    for geom, value in shapes:
        rings = geom["coordinates"]
        n_rings.append(len(rings))
        values.append(value)
        if keep_dicts:
            dicts.append(geom)
        for ring in rings:
            ring_len.append(len(ring))
            extend(chain(ring))
    xy = np.frombuffer(buf, dtype=np.float64).reshape(-1, 2) if len(buf) else np.zeros((0, 2))
    return Ragged(xy, _offsets(ring_len), _offsets(n_rings)), np.asarray(values), dicts


def _confidence_sums(
    job: VectorJob,
    win: Window,
    dicts: list,
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-piece sum and count of valid confidence pixels (exact: pixel-aligned polygons
    rasterized by pixel centre give back each piece's pixels)."""
    if job.confidence is None or n == 0:
        return np.zeros(n), np.zeros(n)
    with rasterio.open(job.confidence) as ds:
        conf = ds.read(1, window=RioWindow(win.col, win.row, win.width, win.height))
    ids = features.rasterize(
        ((g, i) for i, g in enumerate(dicts)),
        out_shape=conf.shape,
        transform=Affine.translation(win.col, win.row),
        fill=-1,
        dtype="int32",
    )
    ok = ids >= 0
    if job.confidence_nodata is not None:
        ok &= conf != job.confidence_nodata
    sums = np.bincount(ids[ok], weights=conf[ok].astype(np.float64), minlength=n)
    return sums, np.bincount(ids[ok], minlength=n).astype(np.float64)


def touches_internal_edge(
    bounds: np.ndarray,
    win: Window,
    height: int,
    width: int,
) -> np.ndarray:
    """Whether each piece (pixel-coordinate bounds) reaches an edge shared with another block."""
    x0, y0, x1, y1 = bounds.T
    return (
        ((x0 == win.col) & (win.col > 0))
        | ((x1 == win.col_end) & (win.col_end < width))
        | ((y0 == win.row) & (win.row > 0))
        | ((y1 == win.row_end) & (win.row_end < height))
    )


def polygonize_block(job: VectorJob, win: Window) -> BlockResult:
    """Polygonize block ``win`` of the class raster (read here, on the worker)."""
    t0 = time.perf_counter()
    with rasterio.open(job.raster) as ds:
        data = ds.read(1, window=RioWindow(win.col, win.row, win.width, win.height))
    mask = None
    if job.nodata is not None and not math.isnan(job.nodata):
        mask = data != job.nodata
    shapes = features.shapes(
        data,
        mask=mask,
        connectivity=job.connectivity,
        transform=Affine.translation(win.col, win.row),
    )
    rag, values, dicts = _flatten(shapes, keep_dicts=job.confidence is not None)
    cls = values.astype(np.int64)
    n = len(cls)
    conf_sum, conf_n = _confidence_sums(job, win, dicts, n)
    del dicts
    edge = touches_internal_edge(rag.bounds(), win, job.height, job.width)
    fin = ~edge if job.finish_interior else np.zeros(n, dtype=bool)
    if job.connectivity == 8:  # repair self-touching rings first (needs the geometries)
        px = as_multi(fix_pixel_polygons(rag.geoms()))
        world, opened_px = to_world(px[fin], job.affine), px[~fin]
    else:  # build each geometry once, finished ones directly in world coordinates
        world = rag.subset(fin).geoms(job.affine) if fin.any() else np.empty(0, dtype=object)
        opened_px = rag.subset(~fin).geoms()
    area, perim = measure(world, job.metres_per_unit, geod_for(job.geographic_crs))
    done = PieceSet(
        wkb_array(world), cls[fin], conf_sum[fin], conf_n[fin], area_ha=area, perim_m=perim
    )
    rest = ~fin
    opened = PieceSet(
        wkb_array(opened_px), cls[rest], conf_sum[rest], conf_n[rest], edge=edge[rest]
    )
    return BlockResult(
        win, done, opened, time.perf_counter() - t0, {"pieces": n, "edge": int(edge.sum())}
    )

"""Joining the pieces of regions that cross block edges, without a global dissolve.

Only pieces that touch an internal block edge are candidates. Two candidates from different
blocks belong to one region when they have the same class and share a pixel edge along the
block boundary, or (8-connectivity) touch at a pixel corner, which happens diagonally across a
block edge or corner. Regions are the connected components of that relation; each is the union
of its pieces. Because pieces carry exact pixel coordinates, this reproduces whole-raster
polygonization: the same regions, hence the same polygon count and areas.
"""

from __future__ import annotations

import numpy as np
import shapely

from geoseg.vector.polygons import components, dissolve, group_sum, touching


def merge_seams(
    geoms: np.ndarray,
    cls: np.ndarray,
    block: np.ndarray,
    edge: np.ndarray,
    sums: list[np.ndarray],
    connectivity: int,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Merge pieces (pixel coordinates) connected across block edges.

    ``block`` is each piece's block number, ``edge`` whether it touches an internal block edge;
    ``sums`` are per-piece values that add up on merging. Returns the merged geometries,
    classes and sums; pieces that merge with nothing keep their place in the order.
    """
    n = len(geoms)
    cand = np.flatnonzero(edge)
    a = b = np.empty(0, dtype=np.int64)
    if cand.size > 1:
        ca, cb = touching(geoms[cand], connectivity=connectivity, cls=cls[cand])
        other = block[cand[ca]] != block[cand[cb]]
        a, b = cand[ca[other]], cand[cb[other]]
    if not len(a):
        return geoms, cls, sums
    labels = components(n, a, b)
    k = int(labels.max()) + 1
    merged = dissolve(geoms, labels)
    grown = np.bincount(labels, minlength=k) > 1
    # a tolerance of 0 drops exactly collinear vertices only: those a union leaves on straight
    # edges where a block boundary was
    merged[grown] = shapely.simplify(merged[grown], 0.0)
    first = np.full(k, n)
    np.minimum.at(first, labels, np.arange(n))
    order = np.argsort(first, kind="stable")  # keep the input order of first members
    new_cls = np.empty(k, dtype=cls.dtype)
    new_cls[labels] = cls
    out_sums = [group_sum(s, labels, k)[order] for s in sums]
    return merged[order], new_cls[order], out_sums

"""Minimum mapping unit: polygons below it are absorbed by their neighbours.

A sieve on the merged polygons (not on raster windows), so a region crossing block edges is
judged on its full size. Each round, every polygon below the threshold joins the neighbour with
which it shares the longest boundary (ties: the larger neighbour, then the earlier one). Every
small polygon points at exactly one neighbour, so each group of polygons joined in a round
contains at most one polygon at or above the threshold, and the group takes its class (or, if
all are small, the class of its largest member). Joined polygons can come to share an edge with
another polygon of their new class; those are dissolved too, so a polygon stays one connected
region of one class, as after a raster sieve. Rounds repeat until no polygon is below the
threshold; a small polygon with no neighbour sharing an edge (an island in nodata) is dropped.
Works in pixel coordinates, where areas and shared lengths are exact.
"""

from __future__ import annotations

import numpy as np
import shapely

from geoseg.vector.polygons import components, dissolve, group_sum, touching


def top_left_pixel(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each region's first pixel in raster order: a key that identifies a region
    whatever its vertices. That pixel's top-left corner is the leftmost vertex on the top row."""
    xy, idx = shapely.get_coordinates(geoms, return_index=True)
    top = np.full(len(geoms), np.inf)
    np.minimum.at(top, idx, xy[:, 1])
    on_top = xy[:, 1] == top[idx]
    left = np.full(len(geoms), np.inf)
    np.minimum.at(left, idx[on_top], xy[on_top, 0])
    return top, left


def _regroup(geoms, cls, sums, labels, keep_cls_of):
    """Dissolve by ``labels``; each group gets the class of member ``keep_cls_of[label]``."""
    k = int(labels.max()) + 1
    return (dissolve(geoms, labels), cls[keep_cls_of], [group_sum(s, labels, k) for s in sums])


def sieve(
    geoms: np.ndarray, cls: np.ndarray, sums: list[np.ndarray], min_area: float, connectivity: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], dict]:
    """Remove polygons smaller than ``min_area`` (pixel units) by merging them into their
    neighbours. Returns geometries, classes, summed per-polygon values and counters."""
    stats = {"rounds": 0, "absorbed": 0, "dropped": 0, "dropped_area": 0.0}
    order = np.lexsort(top_left_pixel(geoms)[::-1])  # ties break the same for any block size
    geoms, cls, sums = geoms[order], cls[order], [s[order] for s in sums]
    while len(geoms):
        area = shapely.area(geoms)
        small = np.flatnonzero(area < min_area)
        if not small.size:
            break
        stats["rounds"] += 1
        a, b = touching(geoms, small, connectivity=4)  # neighbours along an edge
        shared = shapely.length(shapely.intersection(geoms[a], geoms[b]))
        order = np.lexsort((b, -area[b], -shared, a))
        a, b = a[order], b[order]
        first = np.r_[True, a[1:] != a[:-1]] if len(a) else np.zeros(0, dtype=bool)
        src, dst = a[first], b[first]
        isolated = np.setdiff1d(small, src)
        if isolated.size:
            stats["dropped"] += int(isolated.size)
            stats["dropped_area"] += float(area[isolated].sum())
        n = len(geoms)
        labels = components(n, src, dst)
        # the largest member of each group gives its class (the one not below the MMU, if any)
        by_size = np.lexsort((np.arange(n), -area, labels))
        lead = by_size[np.r_[True, labels[by_size][1:] != labels[by_size][:-1]]]
        keep = np.ones(n, dtype=bool)
        keep[isolated] = False
        stats["absorbed"] += int(len(src))
        geoms, cls, sums = _regroup(geoms, cls, sums, labels, lead)
        alive = np.zeros(len(geoms), dtype=bool)
        alive[labels[keep]] = True
        grown = np.bincount(labels, minlength=len(geoms)) > 1
        geoms, cls, sums = _dissolve_same_class(
            geoms, cls, sums, np.flatnonzero(grown), connectivity, alive
        )
    return geoms, cls, sums, stats


def _dissolve_same_class(geoms, cls, sums, changed, connectivity, alive):
    """Join the grown polygons with same-class polygons they now touch; drop dead ones."""
    geoms, cls, sums = geoms[alive], cls[alive], [s[alive] for s in sums]
    remap = np.cumsum(alive) - 1
    changed = remap[changed[alive[changed]]]
    if not changed.size:
        return geoms, cls, sums
    a, b = touching(geoms, changed, connectivity=connectivity, cls=cls)
    if not len(a):
        return geoms, cls, sums
    labels = components(len(geoms), a, b)
    lead = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    lead[labels] = np.arange(len(geoms))  # any member: they share the class
    return _regroup(geoms, cls, sums, labels, lead)

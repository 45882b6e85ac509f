"""Vectorised geometry helpers shared by seam merging and the MMU sieve (shapely 2 arrays).

Polygons from the class raster are kept in *pixel* coordinates (integers, origin at the scene's
top-left corner) until they are final: pieces polygonized in different blocks then share
bit-identical vertices, so unions, shared-edge lengths and areas are exact, whatever the
raster's geotransform.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine

# DE-9IM: the boundaries meet along a line (a shared pixel edge, not just a corner point).
SHARE_EDGE = "****1****"


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label (0..k-1) of each of ``n`` nodes, given edges ``a[i]-b[i]``
    (scipy's union-find-equivalent graph search; nodes without edges get their own label)."""
    from scipy.sparse import coo_matrix  # client side only: workers need not import scipy
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def dissolve(geoms: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One geometry per label (0..max), the union of its members; single members are kept as
    they are. The loop runs over merged groups only, which are few."""
    n = int(labels.max()) + 1 if len(labels) else 0
    out = np.empty(n, dtype=object)
    counts = np.bincount(labels, minlength=n)
    single = counts[labels] == 1
    out[labels[single]] = geoms[single]
    multi = np.flatnonzero(~single)
    if multi.size:
        order = multi[np.argsort(labels[multi], kind="stable")]
        lab = labels[order]
        starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], len(order)], strict=True):
            out[lab[s]] = shapely.union_all(geoms[order[s:e]])
    return out


def group_sum(values: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(labels, weights=values, minlength=n)


def touching(
    geoms: np.ndarray,
    query: np.ndarray | None = None,
    *,
    connectivity: int,
    cls: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i != j, of ``geoms`` that are neighbours: sharing an edge, or (8-connectivity)
    touching at a corner too. ``query`` restricts i to those indices; ``cls`` keeps same-class
    pairs only."""
    tree = shapely.STRtree(geoms)
    qi = np.arange(len(geoms)) if query is None else np.asarray(query)
    a, b = tree.query(geoms[qi], predicate="intersects")
    a = qi[a]
    keep = a != b
    if cls is not None:
        keep &= cls[a] == cls[b]
    a, b = a[keep], b[keep]
    if connectivity == 4 and len(a):
        edge = shapely.relate_pattern(geoms[a], geoms[b], SHARE_EDGE)
        a, b = a[edge], b[edge]
    return a, b


def fix_pixel_polygons(geoms: np.ndarray) -> np.ndarray:
    """GDAL's 8-connected polygons may touch themselves at a pixel corner (an invalid ring);
    repair those (into valid polygons or multipolygons) so that unions are well defined."""
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad], method="structure", keep_collapsed=False)
    return geoms


def as_multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as one-part MultiPolygons (one declared geometry type per layer)."""
    single = shapely.get_type_id(geoms) == shapely.GeometryType.POLYGON
    if single.any():
        geoms = geoms.copy()
        geoms[single] = shapely.multipolygons(geoms[single], indices=np.arange(single.sum()))
    return geoms


def to_world(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Pixel coordinates to the raster's CRS through its geotransform (all vertices at once)."""
    a, b, c, d, e, f = transform[:6]

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([a * x + b * y + c, d * x + e * y + f])

    return shapely.transform(geoms, fn)


def measure(
    geoms: np.ndarray,
    metres_per_unit: float | None,
    geod=None,
) -> tuple[np.ndarray, np.ndarray]:
    """(area in hectares, perimeter in metres) of world-coordinate geometries: planar in a
    projected CRS, on the ellipsoid (pyproj) in a geographic one."""
    if geod is not None:
        ap = np.array([geod.geometry_area_perimeter(g) for g in geoms]).reshape(-1, 2)
        return np.abs(ap[:, 0]) / 1e4, ap[:, 1]
    k = metres_per_unit or 1.0
    return shapely.area(geoms) * (k * k) / 1e4, shapely.length(geoms) * k


def geod_for(wkt: str | None):
    """The ellipsoid (pyproj Geod) of a geographic CRS given as WKT; None for None."""
    if wkt is None:
        return None
    from pyproj import CRS

    return CRS.from_wkt(wkt).get_geod()

"""Joining object parts cut at block edges (see :mod:`geoseg.baseline.objects`).

Parts have global ids: a block's offset plus its local id. Two parts on either side of an edge
join where both blocks' segmentations continue the object across that edge pixel pair; chains
of joins (an object over several blocks) are connected components
(scipy.sparse.csgraph.connected_components). A joined object's class is the argmax of its
parts' class probabilities weighted by their areas.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# (this block's side, the neighbour's side, row / column step to the neighbour)
NEIGHBOURS = (("right", "left", 0, 1), ("bottom", "top", 1, 0))


def seam_pairs(results: dict[tuple, dict], offsets: dict[tuple, int]) -> np.ndarray:
    """(k x 2) global ids of parts to join, from the blocks' ``strips``; ``results`` and
    ``offsets`` are keyed by (scene, block row, block column)."""
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for key, r in results.items():
        s, bi, bj = key
        for side, other, di, dj in NEIGHBOURS:
            nkey = (s, bi + di, bj + dj)
            if side not in r["strips"] or nkey not in results:
                continue
            b = results[nkey]["strips"].get(other)
            if b is None:
                continue
            ids_a, same_a = r["strips"][side]
            ids_b, same_b = b
            m = same_a & same_b & (ids_a >= 0) & (ids_b >= 0)
            pairs.append(
                np.stack(
                    [
                        ids_a[m].astype(np.int64) + offsets[key],
                        ids_b[m].astype(np.int64) + offsets[nkey],
                    ],
                    axis=1,
                )
            )
    return np.unique(np.concatenate(pairs), axis=0)


def components(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct global ids in ``pairs``, the component of each)."""
    nodes = np.unique(pairs)
    if not len(nodes):
        return nodes, np.zeros(0, dtype=np.int64)
    a, b = np.searchsorted(nodes, pairs[:, 0]), np.searchsorted(nodes, pairs[:, 1])
    k = len(nodes)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(k, k))
    _, comp = connected_components(graph, directed=False)
    return nodes, comp.astype(np.int64)


def joined_classes(comp: np.ndarray, probs: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Class index of each part: the argmax of its component's area-weighted probabilities."""
    if not len(comp):
        return np.zeros(0, dtype=np.uint8)
    sums = np.zeros((int(comp.max()) + 1, probs.shape[1]))
    np.add.at(sums, comp, probs * area[:, None])
    return sums.argmax(axis=1)[comp].astype(np.uint8)

"""Instances of the ``thing`` classes of a class map, block by block, with one scene-wide id.

Each block labels its own objects (the connected pixels of one thing class, 4- or
8-connected: :func:`label_block`) and keeps what a neighbour needs to join them: its labels
along its four edges (:class:`BlockObjects`). :func:`resolve` joins every pair of objects that
touch across a block edge into one instance (the components of that equivalence graph) and
numbers the instances 1, 2, ... in the raster order of their first pixel. That number depends
on the pixels alone, so the ids are the same for any block size, worker count or order, and
equal to a whole-scene labelling (tested).

Touching objects of one class (a row of houses) are one connected component. A model with a
border head (``<map>_boundary.tif``) splits them: the objects are the components of the
thing pixels off the border (:func:`border_mask`, the seeds), and each seed then takes the
border pixels of its class next to it, one pixel a step for ``grow`` steps (:func:`grow`; the
largest id wins a tie). A step reaches one pixel further, so a block that sees ``grow`` pixels
of its neighbours' ids around it grows exactly as a whole-scene run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

INSTANCE_NODATA = 0  # instance-id rasters: 0 = no instance (stuff, nodata)


@dataclass
class BlockObjects:
    """One block's objects: ``classes``, ``areas`` and ``first`` (global raster index of the
    first pixel) per local label 1..n, and its labels along its top, bottom, left and right
    edges (local labels, 0 = none)."""

    row: int
    col: int
    height: int
    width: int
    classes: np.ndarray
    areas: np.ndarray
    first: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @property
    def count(self) -> int:
        return len(self.classes)


def structure(connectivity: int) -> np.ndarray:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, not {connectivity}")
    return ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)


def border_mask(boundary: np.ndarray, threshold: float) -> np.ndarray:
    """The border pixels of a border head's raster (uint8 probability x 254, 255 = nodata)."""
    return (boundary >= round(threshold * 254)) & (boundary != 255)


def grow(ids: np.ndarray, cls: np.ndarray, border: np.ndarray, steps: int) -> np.ndarray:
    """``ids`` grown into the ``border`` pixels without an id, ``steps`` times one pixel
    (4-neighbours of the same class; the largest neighbouring id wins)."""
    ids = ids.copy()
    h, w = ids.shape
    for _ in range(steps):
        free = border & (ids == 0)
        if not free.any():
            break
        best = np.zeros_like(ids)
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            # the neighbour at (r + dr, c + dc) of each pixel (r, c)
            dst = (slice(max(-dr, 0), h - max(dr, 0)), slice(max(-dc, 0), w - max(dc, 0)))
            src = (slice(max(dr, 0), h + min(dr, 0)), slice(max(dc, 0), w + min(dc, 0)))
            cand = np.where(cls[src] == cls[dst], ids[src], 0)
            np.maximum(best[dst], cand, out=best[dst])
        take = free & (best > 0)
        ids[take] = best[take]
    return ids


def label_block(
    cls: np.ndarray,
    things: list[int],
    origin: tuple[int, int],
    scene_width: int,
    connectivity: int = 4,
    border: np.ndarray | None = None,
) -> tuple[np.ndarray, BlockObjects]:
    """Local labels (uint32, 0 = no object) of the objects of ``things`` in the class block
    ``cls`` whose top-left pixel is ``origin`` (row, column) in a scene ``scene_width`` wide,
    labelled in raster order of their first pixel, and what :func:`resolve` needs of them.
    With ``border`` (bool), the objects are the components of the pixels off it (seeds)."""
    labels = np.zeros(cls.shape, dtype=np.uint32)
    st = structure(connectivity)
    n = 0
    for k in things:  # one class at a time: touching objects of two classes stay two
        mask = cls == k
        if border is not None:
            mask &= ~border
        lab, m = ndimage.label(mask, structure=st)
        if m:
            hit = lab > 0
            labels[hit] = lab[hit].astype(np.uint32) + n
            n += m
    # renumber in raster order of each object's first pixel (deterministic, scene-wide order)
    flat = labels.ravel()
    idx = np.flatnonzero(flat)
    first_pos = np.full(n + 1, flat.size, dtype=np.int64)
    np.minimum.at(first_pos, flat[idx], idx)
    order = np.argsort(first_pos[1:], kind="stable")
    remap = np.zeros(n + 1, dtype=np.uint32)
    remap[order + 1] = np.arange(1, n + 1, dtype=np.uint32)
    labels = remap[labels]
    first_local = np.sort(first_pos[1:])
    h, w = cls.shape
    r, c = np.divmod(first_local, w)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.int64)
    classes = cls.ravel()[first_local].astype(np.uint8)
    objs = BlockObjects(
        row=origin[0],
        col=origin[1],
        height=h,
        width=w,
        classes=classes,
        areas=areas,
        first=(r + origin[0]) * scene_width + c + origin[1],
        top=labels[0].copy(),
        bottom=labels[-1].copy(),
        left=labels[:, 0].copy(),
        right=labels[:, -1].copy(),
    )
    return labels, objs


def _pairs(a: np.ndarray, b: np.ndarray, connectivity: int) -> np.ndarray:
    """(label in a, label in b) of pixels facing each other across an edge (a and b run along
    it); with 8-connectivity also the diagonal neighbours."""
    shifts = (0,) if connectivity == 4 else (-1, 0, 1)
    out = []
    for s in shifts:
        if s < 0:
            x, y = a[-s:], b[: len(b) + s]
        elif s > 0:
            x, y = a[: len(a) - s], b[s:]
        else:
            x, y = a, b
        n = min(len(x), len(y))
        x, y = x[:n], y[:n]
        ok = (x > 0) & (y > 0)
        out.append(np.stack([x[ok], y[ok]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.uint32)


def resolve(blocks: list[BlockObjects], connectivity: int = 4) -> tuple[list[np.ndarray], dict]:
    """Scene-wide instance ids: for each block (in the order given) an array mapping its local
    label (index) to the instance id (0 -> 0), and the instances' ``class``, ``area`` and
    ``first`` pixel (arrays indexed by id - 1)."""
    offsets = np.cumsum([0] + [b.count for b in blocks])
    total = int(offsets[-1])
    at = {(b.row, b.col): i for i, b in enumerate(blocks)}
    edges = []
    for i, b in enumerate(blocks):
        nb = [(b.row, b.col + b.width, "right", "left"), (b.row + b.height, b.col, "bottom", "top")]
        for r, c, mine, theirs in nb:
            j = at.get((r, c))
            if j is None:
                continue
            p = _pairs(getattr(b, mine), getattr(blocks[j], theirs), connectivity)
            same = b.classes[p[:, 0] - 1] == blocks[j].classes[p[:, 1] - 1] if len(p) else []
            p = p[same] if len(p) else p
            edges.append(np.stack([p[:, 0] - 1 + offsets[i], p[:, 1] - 1 + offsets[j]], 1))
        if connectivity == 8:  # the corner pixel diagonal to the lower-right neighbour
            j = at.get((b.row + b.height, b.col + b.width))
            if j is not None:
                x, y = b.bottom[-1], blocks[j].top[0]
                if x and y and b.classes[x - 1] == blocks[j].classes[y - 1]:
                    edges.append(np.array([[x - 1 + offsets[i], y - 1 + offsets[j]]]))
            j = next(
                (
                    k
                    for k, o in enumerate(blocks)
                    if o.row == b.row + b.height and o.col + o.width == b.col
                ),
                None,
            )
            if j is not None:  # lower-left neighbour
                x, y = b.bottom[0], blocks[j].top[-1]
                if x and y and b.classes[x - 1] == blocks[j].classes[y - 1]:
                    edges.append(np.array([[x - 1 + offsets[i], y - 1 + offsets[j]]]))
    e = np.concatenate(edges).astype(np.int64) if edges else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(total, total))
    n_comp, comp = connected_components(graph, directed=False)
    first = np.concatenate([b.first for b in blocks]) if total else np.zeros(0, np.int64)
    comp_first = np.full(n_comp, np.iinfo(np.int64).max)
    np.minimum.at(comp_first, comp, first)
    order = np.argsort(comp_first, kind="stable")
    ids = np.empty(n_comp, dtype=np.uint32)
    ids[order] = np.arange(1, n_comp + 1, dtype=np.uint32)
    inst = ids[comp]  # per local object (all blocks), its instance id
    areas = np.bincount(
        inst,
        weights=np.concatenate([b.areas for b in blocks]) if total else None,
        minlength=n_comp + 1,
    )[1:]
    classes = np.zeros(n_comp, dtype=np.uint8)
    if total:
        classes[inst - 1] = np.concatenate([b.classes for b in blocks])
    maps = [
        np.concatenate([[0], inst[offsets[i] : offsets[i + 1]]]).astype(np.uint32)
        for i in range(len(blocks))
    ]
    return maps, {"class": classes, "area": areas.astype(np.int64), "first": comp_first[order]}


def keep_large(maps: list[np.ndarray], info: dict, min_pixels: int) -> tuple[list, dict]:
    """:func:`resolve`'s result without the instances smaller than ``min_pixels`` (their
    pixels get no id), the others renumbered 1, 2, ... in the same order. Decided on whole
    instances, so as block-independent as the ids."""
    if min_pixels <= 1:
        return maps, info
    keep = info["area"] >= min_pixels
    lut = np.zeros(len(keep) + 1, dtype=np.uint32)
    lut[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.uint32)
    return [lut[m] for m in maps], {k: v[keep] for k, v in info.items()}


def label_scene(
    cls: np.ndarray,
    things: list[int],
    connectivity: int = 4,
    min_pixels: int = 1,
    border: np.ndarray | None = None,
    steps: int = 0,
) -> np.ndarray:
    """The instance ids of a whole class map at once (what the block route must equal);
    with ``border``, seeds off it grown ``steps`` pixels into it (:func:`grow`)."""
    labels, objs = label_block(cls, things, (0, 0), cls.shape[1], connectivity, border)
    maps, _ = keep_large(*resolve([objs], connectivity), min_pixels)
    ids = maps[0][labels]
    if border is not None and steps:
        ids = grow(ids, cls, border & np.isin(cls, things), steps)
    return ids

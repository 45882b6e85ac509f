"""OBIA block tasks: segment a block with a halo, describe and label its objects, classify them.

Objects cut at block edges: each block segments its core plus a ``halo`` of context and keeps
the objects clipped to its core, numbered per block; an object that crosses the block edge is
thus first cut into one part per block. The parts are then merged back where *both* blocks'
segmentations agree that the object continues across the edge (for a pixel pair straddling
the edge, each block's segmentation, which sees the other side in its halo, puts the two
pixels in one object): the block returns, for each of its edges, the part touching each edge
pixel and whether the object continues there (:func:`seam_strips`); the client joins the
parts by :mod:`geoseg.baseline.stitch`. Merged parts get one class, from their area-weighted
mean class probabilities, so no object of the map is split at a block edge by the tiling
where the segmentation does not split it. We chose this over "keep the objects whose
centroid lies in the core" because that needs a second exchange of whole label blocks to
resolve pixels claimed by two blocks (or by none); here every pixel belongs to exactly one
part from the block that holds it, and only one-pixel strips travel. Features of a merged
object are those of its parts (a cut part has its own shape and texture); the map keeps the
parts' shared class. With ``halo: 0`` no merging happens (parts stay cut).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoseg.baseline.classifier import predict_proba
from geoseg.baseline.features import FeatureSpec, object_features
from geoseg.baseline.scenes import BaselineScene
from geoseg.baseline.segment import relabel, segment, zscore
from geoseg.core.grid import Window
from geoseg.io.staged import save_npz
from geoseg.train.labels import IGNORE


@dataclass(frozen=True)
class ObiaJob:
    """What every block task needs (small; sent with each task)."""

    seg: object  # a segmentation model of geoseg.baseline.config
    spec: FeatureSpec
    bands: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    n_classes: int
    min_overlap: float
    halo: int
    staging: str

    def path(self, key: tuple[int, int, int]) -> str:
        """Staged objects of block (scene index, block row, block column)."""
        s, bi, bj = key
        return str(Path(self.staging) / f"s{s:03d}_b{bi:05d}_{bj:05d}.npz")


def grow(w: Window, halo: int, height: int, width: int) -> Window:
    """``w`` grown by ``halo`` pixels on each side, clipped to the scene."""
    r0, c0 = max(0, w.row - halo), max(0, w.col - halo)
    r1, c1 = min(height, w.row_end + halo), min(width, w.col_end + halo)
    return Window(r0, c0, r1 - r0, c1 - c0)


def block_objects(job: ObiaJob, s: BaselineScene, bi: int, bj: int, w: Window) -> dict:
    """Segment block ``w`` of scene ``s``; stage its objects (mapped scenes) and return their
    training samples, seam strips and counts."""
    t0 = time.perf_counter()
    info = s.info
    read = grow(w, job.halo, info.height, info.width)
    x, valid = s.scene.read(read, list(job.bands))
    z = zscore(x, valid, job.mean, job.std)
    lab_r = segment(z, valid, job.seg)
    cs = w.slices((read.row, read.col))
    core = relabel(lab_r[cs] + 1)
    m = int(core.max()) + 1
    xc, zc = x[:, cs[0], cs[1]], z[:, cs[0], cs[1]]
    feats = object_features(xc, zc, core, m, job.spec)
    sel = core >= 0
    area = np.bincount(core[sel], minlength=m)
    res = {
        "scene": s.index,
        "bi": bi,
        "bj": bj,
        "objects": m,
        "pixels": int(sel.sum()),
        "area": area.astype(np.int32),
        "strips": seam_strips(lab_r, core, read, w, info.height, info.width),
    }
    if s.labels is not None:
        y = s.labels.open().read(w)
        y[~sel] = IGNORE
        res.update(_labelled(job, s, w, core, m, area, y, feats))
    if s.mapped:
        save_npz(job.path((s.index, bi, bj)), lab=core, feats=feats)
    res["seconds"] = time.perf_counter() - t0
    return res


def _labelled(
    job: ObiaJob,
    s: BaselineScene,
    w: Window,
    core: np.ndarray,
    m: int,
    area: np.ndarray,
    y: np.ndarray,
    feats: np.ndarray,
) -> dict:
    """Training samples (objects wholly in the training area whose majority label covers at
    least ``min_overlap`` of them) and the segmentation's purity on held-out labels."""
    n = job.n_classes
    out: dict = {}
    lab = y != IGNORE
    if s.role != "train":  # held-out labels: the validation part of a split, val, test
        held = lab & s.split.val_mask(w) if s.role == "split" else lab
        h = np.bincount(core[held].astype(np.int64) * n + y[held], minlength=m * n)
        h = h.reshape(m, n)
        out["heldout"] = (int(h.max(axis=1).sum()), int(h.sum()))
    if s.trains:
        allowed = ~s.split.forbidden_mask(w)
        outside = np.bincount(core[(core >= 0) & ~allowed], minlength=m) > 0
        ok = lab & allowed
        h = np.bincount(core[ok].astype(np.int64) * n + y[ok], minlength=m * n).reshape(m, n)
        major = h.argmax(axis=1)
        share = h.max(axis=1) / np.maximum(area, 1)
        keep = ~outside & (share >= job.min_overlap) & (area > 0)
        out["x"], out["y"] = feats[keep], major[keep].astype(np.int64)
    return out


def seam_strips(
    lab_r: np.ndarray, core: np.ndarray, read: Window, w: Window, height: int, width: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each edge of ``w`` with a neighbour block and halo context: (the part of ``core``
    at each edge pixel, whether this block's segmentation continues the object across)."""
    r0, c0 = w.row - read.row, w.col - read.col
    r1, c1 = r0 + w.height, c0 + w.width
    out = {}
    if w.col > 0 and c0 > 0:
        out["left"] = (core[:, 0], _same(lab_r[r0:r1, c0 - 1], lab_r[r0:r1, c0]))
    if w.col_end < width and c1 < lab_r.shape[1]:
        out["right"] = (core[:, -1], _same(lab_r[r0:r1, c1 - 1], lab_r[r0:r1, c1]))
    if w.row > 0 and r0 > 0:
        out["top"] = (core[0], _same(lab_r[r0 - 1, c0:c1], lab_r[r0, c0:c1]))
    if w.row_end < height and r1 < lab_r.shape[0]:
        out["bottom"] = (core[-1], _same(lab_r[r1 - 1, c0:c1], lab_r[r1, c0:c1]))
    return out


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b) & (a >= 0)


def block_classify(job: ObiaJob, model, path: str, seam_ids: np.ndarray) -> dict:
    """Class probabilities of a staged block's objects; stages each object's most probable
    class and returns the probabilities of its parts merged across edges (``seam_ids``)."""
    t0 = time.perf_counter()
    with np.load(path) as z:
        lab, feats = z["lab"], z["feats"]
    probs = predict_proba(model, feats, job.n_classes)
    save_npz(path, lab=lab, cls=probs.argmax(axis=1).astype(np.uint8))
    return {"probs": probs[seam_ids], "seconds": time.perf_counter() - t0}


def paint(arrays: dict, extra) -> np.ndarray:
    """Class ids of a block's pixels from its objects' classes, with the classes of parts
    merged across edges (``extra`` = (class ids, nodata, part ids, their class indices))."""
    class_ids, nodata, ids, cls = extra
    obj = arrays["cls"].copy()
    obj[ids] = cls
    lab = arrays["lab"]
    out = np.full(lab.shape, nodata, dtype=np.uint8)
    sel = lab >= 0
    out[sel] = class_ids[obj[lab[sel]]]
    return out

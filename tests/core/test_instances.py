"""Scene-wide instances from blocks equal a whole-scene labelling, for any block size."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import label as sk_label

from geoseg.core.instances import label_block, label_scene, resolve
from geoseg.core.panoptic import add, overlaps, panoptic_quality, stuff_quality


def _scene(h=97, w=131, seed=0):
    rng = np.random.default_rng(seed)
    # blobs of classes 1..3 (1, 2 things), 0 background, with thin touching objects
    small = rng.integers(0, 4, size=(h // 6 + 1, w // 6 + 1)).astype(np.uint8)
    cls = np.kron(small, np.ones((6, 6), np.uint8))[:h, :w]
    noise = rng.random((h, w)) < 0.08
    cls[noise] = rng.integers(0, 4, size=noise.sum())
    return cls


def _blocks(cls, things, size, conn):
    h, w = cls.shape
    labels, objs = {}, []
    for r in range(0, h, size):
        for c in range(0, w, size):
            lab, o = label_block(cls[r : r + size, c : c + size], things, (r, c), w, conn)
            labels[r, c] = lab
            objs.append(o)
    maps, info = resolve(objs, conn)
    out = np.zeros(cls.shape, np.uint32)
    for (r, c), lab, m in zip(labels, labels.values(), maps, strict=True):
        out[r : r + lab.shape[0], c : c + lab.shape[1]] = m[lab]
    return out, info


def _canonical(ids):
    """Ids renumbered by first pixel in raster order (the convention the module promises)."""
    flat = ids.ravel()
    _, first = np.unique(flat, return_index=True)
    order = [flat[i] for i in sorted(first) if flat[i] > 0]
    lut = np.zeros(int(flat.max()) + 1, np.uint32)
    lut[order] = np.arange(1, len(order) + 1)
    return lut[ids]


@pytest.mark.parametrize("conn", [4, 8])
def test_whole_scene_matches_skimage_per_class(conn):
    cls = _scene(seed=1)
    ids = label_scene(cls, [1, 2], conn)
    ref = np.zeros(cls.shape, np.int64)
    for k in (1, 2):
        lab = sk_label(cls == k, connectivity=1 if conn == 4 else 2)
        ref[lab > 0] = lab[lab > 0] + ref.max()
    assert np.array_equal(ids, _canonical(ref))
    assert ids[cls == 3].max() == 0 and ids[cls == 0].max() == 0


@pytest.mark.parametrize("conn", [4, 8])
@pytest.mark.parametrize("size", [7, 16, 32, 50, 200])
def test_blocks_equal_whole_scene(conn, size):
    cls = _scene(seed=2)
    whole = label_scene(cls, [1, 2], conn)
    ids, info = _blocks(cls, [1, 2], size, conn)
    assert np.array_equal(ids, whole)
    assert len(info["area"]) == whole.max()
    assert np.array_equal(info["area"], np.bincount(whole.ravel())[1:])
    first = [np.flatnonzero(whole.ravel() == i)[0] for i in (1, whole.max())]
    assert [info["first"][0], info["first"][-1]] == first


@pytest.mark.parametrize("size", [9, 40])
def test_min_pixels_drops_small_instances_whole(size):
    cls = _scene(seed=4)
    whole = label_scene(cls, [1, 2], 8)
    kept = label_scene(cls, [1, 2], 8, min_pixels=20)
    areas = np.bincount(whole.ravel())[1:]
    assert kept.max() == (areas >= 20).sum() > 0
    assert np.array_equal(kept > 0, np.isin(whole, np.flatnonzero(areas >= 20) + 1))
    ids, info = _blocks(cls, [1, 2], size, 8)
    maps_ids = label_scene(cls, [1, 2], 8, min_pixels=20)
    from geoseg.core.instances import keep_large

    assert np.array_equal(keep_large([ids], info, 20)[0][0], maps_ids)


def test_panoptic_quality_counts_and_void():
    ref = np.zeros((20, 20), np.uint32)
    ref[0:10, 0:10] = 1  # matched (IoU 0.9)
    ref[12:16, 12:16] = 2  # missed
    pred = np.zeros_like(ref)
    pred[0:10, 0:9] = 1
    pred[0:3, 15:20] = 2  # a false positive
    pred[17:20, 0:5] = 3  # in void: ignored
    valid = np.ones(ref.shape, bool)
    valid[17:20, :] = False
    counts = add({}, overlaps(pred, ref, valid))
    q = panoptic_quality(counts, {1: 5, 2: 5, 3: 5}, {1: 5, 2: 5}, [5])[5]
    assert (q["tp"], q["fp"], q["fn"]) == (1, 1, 1)
    assert q["sq"] == pytest.approx(0.9)
    assert q["rq"] == pytest.approx(0.5) and q["pq"] == pytest.approx(0.45)
    assert q["count"] == 2 and q["reference"] == 2 and q["count_error"] == 0.0
    assert stuff_quality(np.array([[8, 2], [0, 10]])).tolist() == pytest.approx([0.8, 10 / 12])


def test_a_border_splits_touching_objects_and_they_grow_back():
    from geoseg.core.instances import border_mask

    cls = np.zeros((9, 14), np.uint8)
    cls[2:7, 2:12] = 3  # two 5 x 5 houses side by side: one component
    head = np.zeros(cls.shape, np.uint8)
    head[:, 6:8] = 254  # the model's border between them
    head[0, 0] = 255  # nodata is no border
    border = border_mask(head, 0.5)
    assert not border[0, 0] and border[4, 6]
    assert label_scene(cls, [3]).max() == 1
    seeds = label_scene(cls, [3], border=border)
    assert seeds.max() == 2 and (seeds > 0).sum() == 40  # the border columns have no id yet
    ids = label_scene(cls, [3], border=border, steps=1)
    assert ((ids > 0) == (cls == 3)).all()  # every house pixel back, none of the background
    assert np.bincount(ids.ravel())[1:].tolist() == [25, 25]
    assert (ids[2:7, 2:7] == 1).all() and (ids[2:7, 7:12] == 2).all()


def test_growing_is_bounded_by_class_and_steps():
    from geoseg.core.instances import grow

    cls = np.array([[3, 3, 3, 3, 1, 3]], np.uint8)
    ids = np.array([[1, 0, 0, 0, 0, 0]], np.uint32)
    border = np.ones(cls.shape, bool)
    assert grow(ids, cls, border, 2).tolist() == [[1, 1, 1, 0, 0, 0]]
    assert grow(ids, cls, border, 9).tolist() == [[1, 1, 1, 1, 0, 0]]  # not across class 1

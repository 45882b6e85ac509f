"""``architecture: maskrcnn``: its detections rendered into the classes and a contact border,
its objects from the labels' components, and a trained bundle through the engine and the
instance seam pass, identical across block sizes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from geoseg.errors import GeoSegError
from geoseg.model.maskrcnn import render
from geoseg.train.detection import instance_targets
from geoseg.train.labels import IGNORE
from tests.train.tiny import CLASSES, same_for_one_block_and_many, tiny_config

THINGS = [{**c, "thing": c["id"] == 2} for c in CLASSES]
MRCNN = {
    "architecture": "maskrcnn",
    "encoder": "tu-tf_efficientnet_lite0",
    "arch_kwargs": {"fpn_channels": 32, "score_threshold": 0.0},
    "heads": [{"name": "boundary"}],
}


def _found(masks: list[np.ndarray], scores: list[float]) -> dict:
    m = torch.from_numpy(np.array(masks, dtype=np.float32))[:, None]
    return {
        "masks": m,
        "scores": torch.tensor(scores),
        "labels": torch.ones(len(masks), dtype=torch.int64),
    }


def test_render_puts_objects_over_stuff_and_marks_only_their_contact():
    h, w = 12, 16
    a, b, c = (np.zeros((h, w), np.float32) for _ in range(3))
    a[2:6, 2:6] = 0.9  # a and b touch along column 5 | 6
    b[2:6, 6:10] = 0.8
    c[8:11, 12:15] = 0.7  # alone
    low = np.zeros((h, w), np.float32)
    low[0:2, 0:2] = 0.9  # below the score threshold: not drawn
    twice = np.zeros((h, w), np.float32)
    twice[2:7, 3:6] = 0.6  # a second, weaker detection of a (and a row below): no contact
    faint = np.zeros((h, w), np.float32)
    faint[0:2, 12:16] = 0.4  # a sure object, its mask below 0.5: stuff there
    sem = torch.zeros((1, 3, h, w))
    sem[0, 0] = 2.0  # stuff 0 > stuff 2 everywhere; the thing (index 1) is stuffed at 0
    found = _found([a, b, c, low, faint, twice], [0.9, 0.8, 0.7, 0.3, 0.95, 0.6])
    out = render(sem, [found], [1], 0.5, 0.5, 3)
    assert out.shape == (1, 4, h, w)
    p = torch.softmax(out[0, :3], 0).numpy()
    border = torch.sigmoid(out[0, 3]).numpy() > 0.5
    assert np.allclose(p.sum(0), 1, atol=1e-4)
    second = np.exp(-2.0)  # stuff 2 against stuff 0, the likeliest, from the branch

    def share(m):  # an object's mask probability m, the top stuff 1 - m, the other in ratio
        return m / (m + (1 - m) * (1 + second))

    assert np.allclose(p[1][a > 0], share(0.9), atol=1e-3)
    assert np.allclose(p[1][c > 0], share(0.7), atol=1e-3)
    assert (p.argmax(0)[(a + b + c) > 0] == 1).all()  # mask probability above 0.5: the object
    assert p[1][0:2, 0:2].max() < 1e-3  # the low-score object is not there
    assert (p.argmax(0)[faint > 0] == 0).all()
    stuff = (a + b + c + faint + twice) == 0
    assert np.allclose(p[0][stuff], 1 / (1 + second), atol=1e-3)
    want = np.zeros((h, w), bool)
    want[2:6, 5:7] = True  # the two columns where a and b meet; c and the outlines: none
    assert np.array_equal(border, want)


def test_objects_are_the_label_components_above_the_size_floor():
    y = torch.zeros((2, 20, 20), dtype=torch.long)
    y[0, 1:6, 1:6] = 1  # 25 px: an object
    y[0, 1:6, 6:11] = 1  # touching it: the same component (4-connected)
    y[0, 10:12, 10:12] = 1  # 4 px: a speck, no object
    y[0, 15:20, 0:5] = 2  # another class
    y[1] = IGNORE
    t = instance_targets(y, [1], min_pixels=20)
    assert len(t) == 2 and len(t[1]["boxes"]) == 0 and t[1]["masks"].shape == (0, 20, 20)
    assert t[0]["boxes"].tolist() == [[1.0, 1.0, 11.0, 6.0]]  # x0, y0, x1, y1 (pixel edges)
    assert t[0]["labels"].tolist() == [1] and int(t[0]["masks"].sum()) == 50
    both = instance_targets(y, [1, 2], min_pixels=20)[0]
    assert both["labels"].tolist() == [1, 2]


def test_maskrcnn_needs_a_border_head(synth, tmp_path):
    from geoseg.train.train import train

    scene, labels = synth(128, 128, bands=3, n_classes=3, patch=32, seed=3)
    cfg = tiny_config(tmp_path / "m", scene, labels, {**MRCNN, "heads": []})
    cfg["classes"] = THINGS
    with pytest.raises(GeoSegError, match="border head"):
        train(cfg)


def test_a_maskrcnn_bundle_trains_and_maps_instances_the_same_for_any_block(
    synth, client, tmp_path
):
    from geoseg.instances.label import instances
    from geoseg.model.bundle import read_meta
    from geoseg.model.runner import TilePredictor
    from geoseg.train.train import train

    scene, labels = synth(160, 160, bands=3, n_classes=3, patch=32, seed=3)
    cfg = tiny_config(tmp_path / "m", scene, labels, MRCNN)
    cfg["classes"] = THINGS
    res = train(cfg)
    meta = read_meta(res.bundle)
    assert meta.architecture == "maskrcnn"
    assert [h.name for h in meta.output_heads] == ["classes", "boundary"]
    p = TilePredictor(str(res.bundle), runtime="openvino")
    assert p.runtime == "torch"  # a detector is not converted
    out = p.predict(np.zeros((1, 3, 64, 64), np.float32))
    assert out.shape == (1, 4, 64, 64) and np.allclose(out[:, :3].sum(1), 1, atol=1e-4)
    one = same_for_one_block_and_many(scene, res.bundle, tmp_path, client)
    with rasterio.open(one.path) as src:  # a two-step model finds few objects: the seam
        classes = src.read(1)  # pass is exercised on the class it maps most
    most = THINGS[int(np.bincount(classes.ravel()).argmax()) - 1]["name"]
    ids = []
    for block in (64, 4096):
        r = instances(
            one.path, tmp_path / f"ids{block}.tif", things=[most], block=block, client=client
        )
        with rasterio.open(r.path) as src:
            ids.append(src.read(1))
    assert ids[0].max() > 0 and np.array_equal(ids[0], ids[1])

"""training.normalize: per-scene: each training scene standardised by its own band statistics
(those --normalize scene computes), recorded in the bundle and applied when it predicts."""

from __future__ import annotations

import numpy as np
import rasterio

from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.engine.predict import predict
from geoseg.model.bundle import read_meta
from geoseg.train.config import load_config
from geoseg.train.prepare import prepare
from geoseg.train.train import train
from tests.engine.test_normalize import _shifted
from tests.train.test_train import CLASSES5, _config


def _two_scenes(synth, tmp_path):
    scene, labels = synth(192, 192, patch=40, seed=21)
    brighter = _shifted(
        scene, tmp_path / "brighter.tif", [1.5, 0.6, 1.3, 0.8], [400, 100, -50, 300]
    )
    cfg = _config(scene, labels, tmp_path / "model", training={"normalize": "per-scene"})
    cfg["scenes"].append({"image": str(brighter), "labels": str(labels)})
    return cfg, scene, brighter


def test_per_scene_puts_every_scene_on_one_radiometry(synth, tmp_path):
    cfg, _, _ = _two_scenes(synth, tmp_path)
    data = prepare(load_config(cfg), load_classes(CLASSES5))
    whole = Window(0, 0, 192, 192)
    medians = []
    for d in data.scenes:
        assert d.radiometry is not None and d.radiometry.mode == "per-scene"
        x, valid, _ = d.read(whole)
        medians.append(np.median(x[:, valid], axis=1))
    # the second scene is the first with other gains and offsets: after their own
    # standardisation both read alike
    np.testing.assert_allclose(medians[0], medians[1], rtol=0.02)
    cfg["training"]["normalize"] = "global"
    data = prepare(load_config(cfg), load_classes(CLASSES5))
    assert all(d.radiometry is None for d in data.scenes)


def test_per_scene_bundle_predicts_with_the_scene_statistics(synth, client, tmp_path):
    cfg, scene, brighter = _two_scenes(synth, tmp_path)
    res = train(cfg)
    meta = read_meta(res.bundle)
    assert meta.normalization.mode == "per-scene" and meta.normalization.quantiles is not None
    maps = []
    for s, name in ((scene, "a.tif"), (brighter, "b.tif")):
        out = predict(s, res.bundle, tmp_path / name, block=128, client=client)  # no option
        with rasterio.open(out.path) as src:
            assert src.tags()["GEOSEG_NORMALIZE"] == "scene"
            maps.append(src.read(1))
    # the same ground in two radiometries maps (nearly) alike: the model never saw raw values
    assert (maps[0] == maps[1]).mean() > 0.97

"""Semi-supervised training (training.unlabelled, FixMatch): the config, the weak and strong
views, the pseudo-label loss, and a real run that reads unlabelled scenes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from geoseg.errors import GeoSegError
from geoseg.train.config import TrainingConfig, load_config
from geoseg.train.semi import fixmatch_loss, pseudo_labels, strong_view
from tests.train.tiny import tiny_config

UNET = {"architecture": "unet", "encoder": "resnet18"}


def _config(out, scene, labels, unlabelled) -> dict:
    return tiny_config(out, scene, labels, UNET, unlabelled=unlabelled)


def test_the_config_takes_a_list_or_a_mapping_and_checks_the_files(synth, tmp_path):
    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    short = load_config(_config(tmp_path / "m", scene, labels, [str(scene)]))
    assert short.training.unlabelled.scenes == [str(scene)]
    assert short.training.unlabelled.threshold == 0.9
    full = {"scenes": [str(scene.parent / "s*.tif")], "threshold": 0.8, "weight": 0.5}
    cfg = load_config(_config(tmp_path / "m", scene, labels, full))
    assert str(scene) in cfg.training.unlabelled.scenes and cfg.training.unlabelled.weight == 0.5
    for bad, words in (
        ([str(tmp_path / "none.tif")], "does not exist"),
        ([str(tmp_path / "no*.tif")], "no file matches"),
        ({"scenes": [str(scene)], "threshold": 1.5}, "threshold"),
    ):
        with pytest.raises(GeoSegError) as e:
            load_config(_config(tmp_path / "m", scene, labels, bad))
        assert "\n" not in str(e.value) and words in str(e.value)
    # off by default, and then absent from the dumps that provenance and stage hashes use
    assert "unlabelled" not in TrainingConfig().model_dump(mode="json")


def test_pseudo_labels_take_only_confident_valid_pixels():
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 0, 0] = 10  # confident class 1
    logits[0, 2, 0, 1] = 0.5  # unsure
    logits[0, 0, 1, 0] = 10  # confident but invalid
    valid = torch.tensor([[[True, True], [False, True]]])
    label, mask = pseudo_labels(logits, valid, 0.9)
    assert label[0, 0, 0] == 1 and mask.tolist() == [[[True, False], [False, False]]]
    strong = torch.zeros(1, 3, 2, 2)
    loss = fixmatch_loss(strong, label, mask, valid)
    # one confident pixel of three valid ones, each at cross-entropy log(3)
    assert loss.item() == pytest.approx(np.log(3) / 3, rel=1e-5)


def test_the_strong_view_distorts_and_cuts_out_but_keeps_the_shape():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 64, 64)).astype(np.float32)
    valid = np.ones((64, 64), bool)
    y = strong_view(x, valid, rng)
    assert y.shape == x.shape and y.dtype == np.float32
    assert not np.allclose(y, x)
    zero_rows = (np.abs(y).sum(axis=(0, 2)) == 0).sum()  # the cut-out square spans rows
    assert (y == 0).all(axis=0).sum() >= 16 * 16 and zero_rows == 0
    assert np.array_equal(x, x.copy())  # the weak view is left as it was


def test_training_with_unlabelled_scenes(synth, tmp_path):
    from geoseg.train.train import train

    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    other, _ = synth(200, 180, bands=4, n_classes=3, patch=40, seed=9)
    u = {"scenes": [str(other)], "threshold": 0.4, "batch_size": 2}
    res = train(_config(tmp_path / "m", scene, labels, u))
    with open(res.history_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all("unlabelled_confident" in r for r in rows)
    shares = [float(r["unlabelled_confident"]) for r in rows]
    assert all(0 <= s <= 1 for s in shares) and max(shares) > 0
    given = res.meta.provenance["config"]["training"]["unlabelled"]
    assert given["scenes"] == [str(other)]

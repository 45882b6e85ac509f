"""Model heads in training: the boundary target, one loss per head, a bundle that declares
its heads and runs through the engine, and configs without heads unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch

from geoseg.errors import GeoSegError
from geoseg.train.config import load_config
from geoseg.train.heads import border_loss, boundary_target
from geoseg.train.labels import IGNORE
from tests.train.tiny import CLASSES, same_for_one_block_and_many, tiny_config

UNET = {"architecture": "unet", "encoder": "resnet18"}
THINGS = [{**c, "thing": c["id"] == 2} for c in CLASSES]


def test_boundary_target_marks_thing_pixels_near_other_classes():
    y = torch.zeros((1, 7, 9), dtype=torch.long)
    y[0, 2:5, 2:7] = 1  # a thing (index 1) in background (index 0)
    y[0, 0, :] = IGNORE  # unlabelled: no border against it
    t = boundary_target(y, [1], 1)[0]
    inner = np.zeros((7, 9), bool)
    inner[3, 3:6] = True
    assert t[torch.from_numpy(inner)].sum() == 0  # the interior
    ring = (y[0] == 1).numpy() & ~inner
    assert bool(t[torch.from_numpy(ring)].all()) and t.sum() == ring.sum()
    assert boundary_target(y, [1], 2)[0].sum() == (y[0] == 1).sum()  # 3 rows: all border


def test_the_balanced_border_loss_does_not_reward_the_prior():
    """With a border of 5 % of the pixels, a plain cross-entropy is lowest for a constant
    prediction at the prior (what the Dubai head learned); the balanced loss is not: a
    constant 0.5 beats the prior, and a prediction that finds the border beats both."""
    target = torch.zeros(10_000)
    target[:500] = 1.0
    logit = torch.logit(torch.tensor(0.05))

    def const(v):
        return torch.full_like(target, float(v))

    plain = {
        k: border_loss(const(v), target, "bce").item() for k, v in (("prior", logit), ("half", 0))
    }
    assert plain["prior"] < plain["half"]
    assert border_loss(
        const(logit), target, "bce"
    ) == torch.nn.functional.binary_cross_entropy_with_logits(const(logit), target)
    bal = {k: border_loss(const(v), target).item() for k, v in (("prior", logit), ("half", 0))}
    assert bal["half"] < bal["prior"]
    found = torch.where(target > 0, 3.0, -3.0)
    assert border_loss(found, target).item() < bal["half"] / 3


def test_a_bundle_with_a_boundary_head_trains_and_predicts(synth, client, tmp_path):
    from geoseg.engine.predict import predict
    from geoseg.model.bundle import read_meta
    from geoseg.model.runner import TilePredictor
    from geoseg.train.train import train

    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    cfg = tiny_config(tmp_path / "m", scene, labels, {**UNET, "heads": [{"name": "boundary"}]})
    cfg["classes"] = THINGS
    res = train(cfg)
    meta = read_meta(res.bundle)
    assert [(h.name, h.channels, h.activation) for h in meta.output_heads] == [
        ("classes", 3, "softmax"),
        ("boundary", 1, "sigmoid"),
    ]
    assert json.loads((res.bundle / "bundle.json").read_text())["classes"][1]["thing"] is True
    p = TilePredictor(str(res.bundle))
    x = np.random.default_rng(0).standard_normal((1, 4, 64, 64)).astype(np.float32)
    out = p.predict(x)
    assert out.shape == (1, 4, 64, 64)
    assert np.allclose(out[:, :3].sum(1), 1, atol=1e-5)  # softmax over the classes alone
    assert (out[:, 3] >= 0).all() and (out[:, 3] <= 1).all()
    r = predict(scene, str(res.bundle), tmp_path / "map.tif", probabilities=True, client=client)
    with rasterio.open(r.path) as src:
        assert set(np.unique(src.read(1))) <= {1, 2, 3}
    with rasterio.open(r.outputs["probs"]) as src:
        assert src.count == 3  # the classes' probabilities only
    border = tmp_path / "map_boundary.tif"  # the other head: a COG of its own
    assert r.outputs["boundary"] == str(border)
    with rasterio.open(border) as src:
        assert (src.count, src.dtypes[0], src.nodata) == (1, "uint8", 255)
        assert src.descriptions == ("boundary",) and src.scales[0] == pytest.approx(1 / 254)
        head = src.read(1)
    assert head.max() <= 254 and len(np.unique(head)) > 2  # blended values, no nodata here
    # blended across blocks as the classes: the same values from one block and from many
    same_for_one_block_and_many(scene, res.bundle, tmp_path, client)


def test_heads_need_things_and_no_unlabelled(synth, tmp_path):
    from geoseg.train.train import train

    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    cfg = tiny_config(tmp_path / "m", scene, labels, {**UNET, "heads": [{"name": "boundary"}]})
    with pytest.raises(GeoSegError, match="need thing classes"):
        train(cfg)
    cfg["training"]["unlabelled"] = [str(scene)]
    with pytest.raises(GeoSegError, match="do not combine"):
        load_config(cfg)


def test_a_config_without_heads_dumps_as_before(synth, tmp_path):
    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    cfg = load_config(tiny_config(tmp_path / "m", scene, labels, UNET))
    assert "heads" not in cfg.model_dump()["model"]

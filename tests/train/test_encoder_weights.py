"""Initial encoder weights: names smp and timm offer (parsed, fetched from their cache, one-line
errors offline or for an unknown name) and local files; nothing here downloads."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest
import segmentation_models_pytorch as smp
import timm
import torch
import yaml
from safetensors.torch import save_file

from geoseg.core.classes import load_classes
from geoseg.errors import GeoSegError
from geoseg.model.bundle import BundleMeta, Normalization, read_meta
from geoseg.model.factory import build_model
from geoseg.train.config import load_config
from geoseg.train.encoder_weights import load_encoder_weights
from geoseg.train.train import train

CLASSES = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(3)]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network and empty caches, so no test can download or find a real cached copy;
    returns the (empty) Hugging Face hub cache folder."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    cache = tmp_path / "cache"
    for var in ("TORCH_HOME", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(cache / var.lower()))
    from huggingface_hub import constants

    # huggingface_hub read HF_HOME when it was imported, so its folder is set directly; offline
    # mode fails at once where a blocked network is retried for about 20 s per file.
    hub = cache / "hf-hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hub


def _meta(bands: int, encoder: str = "resnet18") -> BundleMeta:
    return BundleMeta(
        architecture="unet",
        encoder=encoder,
        in_channels=bands,
        bands=list(range(1, bands + 1)),
        normalization=Normalization(mean=[0.0] * bands, std=[1.0] * bands),
        classes=load_classes(CLASSES).classes,
    )


def _config(out, model: dict, scene="scene.tif", labels="labels.tif") -> dict:
    return {
        "classes": CLASSES,
        "scenes": [{"image": str(scene), "labels": str(labels)}],
        "split": {"mode": "blocks", "block": 64, "val_fraction": 0.25, "buffer": 8},
        "model": {"architecture": "unet", "tile": 64, "overlap": 16, **model},
        "training": {
            "epochs": 1,
            "samples_per_epoch": 4,
            "batch_size": 4,
            "crop": 64,
            "val_window": 64,
            "threads": 1,
            "early_stopping": None,
        },
        "output": str(out),
    }


def _write(path, cfg: dict):
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_name_parses_and_offline_training_names_the_cache(synth, tmp_path, offline):
    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    model = {"encoder": "resnet18", "encoder_weights": "imagenet"}
    path = _write(tmp_path / "c.yaml", _config(tmp_path / "m", model, scene, labels))
    assert load_config(path).model.encoder_weights == "imagenet"  # not a path in tmp_path
    with pytest.raises(GeoSegError) as e:
        train(path)
    msg = _one_line(e)
    assert str(offline) in msg and "model.encoder_weights" in msg and "imagenet" in msg
    assert not (tmp_path / "m" / "bundle.json").exists()

    meta = _meta(4, "tu-resnet18")
    tag = timm.list_pretrained("resnet18.*")[0].partition(".")[2]
    with pytest.raises(GeoSegError) as e:
        load_encoder_weights(build_model(meta), tag, meta)
    msg = _one_line(e)
    assert str(offline) in msg and "model.encoder_weights" in msg and "timm" in msg


@pytest.mark.parametrize(
    ("encoder", "valid"),
    [
        ("resnet18", lambda: list(smp.encoders.encoders["resnet18"]["pretrained_settings"])),
        ("tu-resnet18", lambda: [m.partition(".")[2] for m in timm.list_pretrained("resnet18.*")]),
    ],
)
def test_b_an_unknown_name_lists_the_valid_ones(encoder, valid, tmp_path):
    cfg = _config(tmp_path / "m", {"encoder": encoder, "encoder_weights": "imagenet21k"})
    with pytest.raises(GeoSegError) as e:
        load_config(cfg)
    msg = _one_line(e)
    assert "model.encoder_weights" in msg and "imagenet21k" in msg
    assert valid() and all(name in msg for name in valid())
    meta = _meta(3, encoder)
    with pytest.raises(GeoSegError) as e:
        load_encoder_weights(build_model(meta), "imagenet21k", meta)
    assert all(name in _one_line(e) for name in valid())


@pytest.mark.parametrize(
    "model",
    [
        {"encoder": "tu-not_a_timm_model", "encoder_weights": "imagenet"},
        {"architecture": "pixelnet", "encoder_weights": "imagenet"},
        {"encoder": "resnet18", "encoder_weights": "none"},
    ],
)
def test_b_names_that_cannot_be_weights_are_config_errors(model, tmp_path):
    with pytest.raises(GeoSegError) as e:
        load_config(_config(tmp_path / "m", model))
    assert "model.encoder_weights" in _one_line(e)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_c_a_local_file_loads_its_tensors(fmt, tmp_path):
    torch.manual_seed(1)
    donor = build_model(_meta(3)).encoder.state_dict()
    path = tmp_path / f"enc.{fmt}"
    if fmt == "pth":
        torch.save(donor, path)
    else:
        save_file({f"encoder.{k}": v.contiguous() for k, v in donor.items()}, str(path))

    torch.manual_seed(2)
    model = build_model(_meta(3))
    done = load_encoder_weights(model, path, _meta(3))
    assert all(torch.equal(v, donor[k]) for k, v in model.encoder.state_dict().items())
    assert done["encoder_weights"] == str(path.resolve())
    assert done["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert done["loaded"] == done["total"] == len(donor) and done["skipped"] == 0
    assert json.loads(json.dumps(done)) == done

    torch.manual_seed(2)
    model = build_model(_meta(4))
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    done = load_encoder_weights(model, str(path), _meta(4))
    after = model.encoder.state_dict()
    other = [k for k in after if after[k].shape != donor[k].shape]
    assert other == ["conv1.weight"] and done["skipped"] == 0
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    # adapted to 4 bands as smp adapts its own pretrained first convolution
    patched = smp.encoders.get_encoder("resnet18", in_channels=3)
    patched.load_state_dict(donor)
    smp.encoders._utils.patch_first_conv(patched, 4, pretrained=True)
    assert torch.allclose(after["conv1.weight"], patched.conv1.weight)
    assert all(torch.equal(after[k], donor[k]) for k in after if k not in other)


def test_c_a_file_is_resolved_against_the_config_folder_and_a_name_is_not(tmp_path):
    (tmp_path / "sub").mkdir()
    for given, want in [
        ("enc.pth", tmp_path / "enc.pth"),
        ("sub/enc.safetensors", tmp_path / "sub" / "enc.safetensors"),
        ("ssl", "ssl"),
    ]:
        cfg = _config(tmp_path / "m", {"encoder": "resnet18", "encoder_weights": given})
        path = _write(tmp_path / "c.yaml", cfg)
        assert load_config(path).model.encoder_weights == str(want)


def _plant_smp(hub, encoder: str, name: str) -> dict:
    """Put a 3-band encoder state where smp's download (Hugging Face hub) caches it."""
    settings = smp.encoders.encoders[encoder]["pretrained_settings"][name]
    repo = "models--" + settings["repo_id"].replace("/", "--")
    snap = hub / repo / "snapshots" / settings["revision"]
    snap.mkdir(parents=True)
    torch.manual_seed(5)
    state = smp.encoders.get_encoder(encoder).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))
    (snap / "config.json").write_text("{}")
    return state


def test_d_named_weights_in_the_cache_load_without_network(offline, synth, tmp_path):
    cached = _plant_smp(offline, "resnet18", "imagenet")
    torch.manual_seed(2)
    model = build_model(_meta(3))
    done = load_encoder_weights(model, "imagenet", _meta(3))
    assert all(torch.equal(v, cached[k]) for k, v in model.encoder.state_dict().items())
    settings = smp.encoders.encoders["resnet18"]["pretrained_settings"]["imagenet"]
    assert done["source"] == "smp" and done["encoder_weights"] == "imagenet"
    assert done["revision"] == settings["revision"] and done["loaded"] == done["total"]

    # 4 bands: smp adapts the first convolution of the cached weights itself
    torch.manual_seed(2)
    model = build_model(_meta(4))
    before = model.encoder.conv1.weight.clone()
    done = load_encoder_weights(model, "imagenet", _meta(4))
    smp_own = smp.encoders.get_encoder("resnet18", in_channels=4, weights="imagenet")
    after = model.encoder.state_dict()
    assert torch.equal(after["conv1.weight"], smp_own.conv1.weight)
    assert not torch.equal(after["conv1.weight"], before)
    assert all(torch.equal(after[k], cached[k]) for k in after if k != "conv1.weight")
    assert done["skipped"] == 0

    # a training run from the cached weights records them in its bundle
    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    model = {"encoder": "resnet18", "encoder_weights": "imagenet"}
    path = _write(tmp_path / "c.yaml", _config(tmp_path / "m", model, scene, labels))
    init = read_meta(train(path).bundle).provenance["encoder_init"]
    assert init["encoder_weights"] == "imagenet" and init["source"] == "smp"
    assert init["repo_id"] == settings["repo_id"] and init["loaded"] == init["total"]


def test_d_timm_weights_in_the_cache_load_without_network(offline):
    model_name = timm.list_pretrained("resnet18.*")[0]
    hub_id = timm.models.get_pretrained_cfg(model_name).hf_hub_id
    repo = offline / ("models--" + hub_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    torch.manual_seed(5)
    state = timm.create_model("resnet18").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(snap / "model.safetensors"))

    meta = _meta(3, "tu-resnet18")
    torch.manual_seed(2)
    model = build_model(meta)
    done = load_encoder_weights(model, model_name.partition(".")[2], meta)
    own = model.encoder.state_dict()
    assert all(torch.equal(v, state[k.removeprefix("model.")]) for k, v in own.items())
    assert done["source"] == "timm" and done["model"] == model_name
    assert done["hf_hub_id"] == hub_id and done["loaded"] == done["total"]

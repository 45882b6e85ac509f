"""Model bundles: safetensors + JSON only, validated, tamper-evident."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.errors import GeoSegError
from geoseg.model.bundle import META_FILE, WEIGHTS_FILE, read_meta, sha256_file
from geoseg.model.factory import create_bundle, load_model

CLASSES = [{"id": 1, "name": "water", "color": "#0000ff"}, {"id": 2, "name": "forest"}]


@pytest.fixture
def bundle(tmp_path):
    d = tmp_path / "b"
    create_bundle(
        d,
        classes=CLASSES,
        bands=[3, 2, 1],
        architecture="unet",
        encoder="resnet18",
        mean=[1.0, 2.0, 3.0],
        std=[1.0, 1.0, 2.0],
        tile=256,
        overlap=32,
        name="t",
        seed=1,
    )
    return d


def test_roundtrip_same_weights_and_metadata(bundle):
    meta = read_meta(bundle)
    assert meta.bands == [3, 2, 1] and meta.in_channels == 3 and meta.n_classes == 2
    assert meta.classes[1].color  # default colour filled in
    assert meta.weights_sha256 == sha256_file(bundle / WEIGHTS_FILE)
    m1, _ = load_model(bundle)
    m2, _ = load_model(bundle)
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_other_architectures_by_name(tmp_path):
    for arch in ("fpn", "pspnet", "deeplabv3plus"):
        create_bundle(
            tmp_path / arch, classes=CLASSES, bands=4, architecture=arch, encoder="resnet18"
        )
        model, meta = load_model(tmp_path / arch)
        out = model(torch.zeros(1, 4, 64, 64))
        assert out.shape == (1, 2, 64, 64)
    with pytest.raises(GeoSegError, match="unknown architecture"):
        create_bundle(tmp_path / "x", classes=CLASSES, bands=4, architecture="nonsense")


def test_pickle_offered_as_weights_is_refused(bundle, tmp_path):
    evil = tmp_path / "evil"
    shutil.copytree(bundle, evil)
    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (evil / WEIGHTS_FILE).write_bytes(pickle.dumps({"w": Boom()}))
    meta = json.loads((evil / META_FILE).read_text())
    meta["weights_sha256"] = sha256_file(evil / WEIGHTS_FILE)
    (evil / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(GeoSegError, match="not a safetensors file"):
        load_model(evil)
    assert not marker.exists()


def test_tampered_bundles_give_clear_errors(bundle, tmp_path):
    bad_json = tmp_path / "j"
    shutil.copytree(bundle, bad_json)
    (bad_json / META_FILE).write_text("{not json")
    with pytest.raises(GeoSegError, match="not valid JSON"):
        read_meta(bad_json)

    changed = tmp_path / "c"
    shutil.copytree(bundle, changed)
    with open(changed / WEIGHTS_FILE, "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\0")
    with pytest.raises(GeoSegError, match="checksum"):
        load_model(changed)

    wrong = tmp_path / "w"
    shutil.copytree(bundle, wrong)
    meta = json.loads((wrong / META_FILE).read_text())
    meta["classes"].append({"id": 3, "name": "extra", "color": "#ffffff"})
    (wrong / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(GeoSegError, match="do not fit"):
        load_model(wrong)

    unknown = tmp_path / "u"
    shutil.copytree(bundle, unknown)
    meta = json.loads((unknown / META_FILE).read_text())
    meta["evil_key"] = 1
    (unknown / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(GeoSegError, match="evil_key"):
        read_meta(unknown)


def test_state_dict_import(tmp_path, bundle):
    model, _ = load_model(bundle)
    sd = tmp_path / "sd.pth"
    torch.save(model.state_dict(), sd)
    d = tmp_path / "imported"
    create_bundle(
        d, classes=CLASSES, bands=[3, 2, 1], architecture="unet", encoder="resnet18", state_dict=sd
    )
    m2, meta = load_model(d)
    assert meta.provenance["trained"] is True
    for a, b in zip(model.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_cli_bundle_create_and_info(tmp_path):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"classes": CLASSES}))
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "bundle",
            "create",
            "--arch",
            "deeplabv3plus",
            "--encoder",
            "resnet18",
            "--bands",
            "4",
            "--classes",
            str(classes),
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["bundle", "info", str(tmp_path / "m")])
    assert r.exit_code == 0 and "deeplabv3plus" in r.output and "forest" in r.output
    r = runner.invoke(app, ["bundle", "info", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "not found" in r.output

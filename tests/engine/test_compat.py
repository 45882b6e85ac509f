"""A scene unlike the model's training scenes (pixel size, data type, band order) is flagged in
one warning line before any block runs, or refused with --strict; training records what it
was trained on; bundles without that record predict as before."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings

import pytest

from geoseg.engine.compat import mismatches
from geoseg.engine.predict import plan
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene
from geoseg.model.bundle import META_FILE, read_meta
from tests.conftest import predict_cmd


def _trained_on(bundles, tmp_path, **fields):
    """A copy of a test bundle whose bundle.json says what it was trained on."""
    d = tmp_path / "model"
    shutil.copytree(bundles("pixelnet", tile=64, overlap=16), d)
    doc = json.loads((d / META_FILE).read_text())
    doc["trained_on"] = fields
    (d / META_FILE).write_text(json.dumps(doc))
    return d


def test_pixel_size_and_data_type_apart_are_named(synth, bundles, tmp_path):
    scene, _ = synth(96, 128, seed=60)  # 10 m, uint16
    info = Scene.of(scene).info
    assert info.pixel_m == pytest.approx(10.0)
    alike = read_meta(_trained_on(bundles, tmp_path / "a", pixel_m=15.0, dtype="uint16"))
    assert mismatches(alike, info) == []  # 1.5x: within the factor 2
    far = read_meta(_trained_on(bundles, tmp_path / "b", pixel_m=30.0, dtype="uint8"))
    found = mismatches(far, info)
    assert found == [
        "its pixels are 10 m and the model's training pixels 30 m (3.0x finer)",
        "its bands are uint16 and the model was trained on uint8",
    ]


def test_bands_in_another_order_are_named(synth, bundles, tmp_path):
    scene, _ = synth(96, 128, seed=60)
    info = Scene.of(scene).info
    meta = read_meta(bundles("pixelnet", tile=64, overlap=16))
    names = [info.band_names[b - 1] for b in meta.bands]
    assert mismatches(meta.model_copy(update={"band_names": names}), info) == []
    swapped = meta.model_copy(update={"band_names": names[::-1]})
    assert "in another order" in mismatches(swapped, info)[0]


def test_predict_warns_once_or_refuses_with_strict(synth, bundles, tmp_path):
    scene, _ = synth(96, 128, seed=60)
    model = _trained_on(bundles, tmp_path, pixel_m=30.0, dtype="uint16")
    with pytest.warns(UserWarning, match=r"unlike what model was trained on: its pixels are 10 m"):
        plan(scene, str(model), tmp_path / "a.tif")
    with pytest.raises(GeoSegError, match=r"3\.0x finer\): use a model trained on such scenes"):
        plan(scene, str(model), tmp_path / "b.tif", strict=True)
    out = tmp_path / "c.tif"
    r = subprocess.run(
        predict_cmd(scene, model, out, "--strict"), capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: the scene is unlike")
    assert not out.exists()


def test_a_bundle_without_the_record_is_not_questioned(synth, bundles, tmp_path):
    scene, _ = synth(96, 128, seed=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan(scene, str(bundles("pixelnet", tile=64, overlap=16)), tmp_path / "a.tif")


def test_training_records_pixel_size_and_data_type(synth, tmp_path):
    from geoseg.train.train import train
    from tests.train.tiny import tiny_config

    scene, labels = synth(160, 160, bands=4, n_classes=3, patch=40, seed=3)
    cfg = tiny_config(tmp_path / "m", scene, labels, {"architecture": "pixelnet"})
    cfg["training"]["epochs"] = 1
    res = train(cfg)
    meta = read_meta(res.bundle)
    assert meta.trained_on.pixel_m == pytest.approx(10.0)
    assert meta.trained_on.dtype == "uint16" and meta.trained_on.pixel_factor == 2.0

"""``--normalize scene|match`` on a real cluster: a scene whose bands were shifted per band
maps like the original; quantiles in bundles; one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import rasterio
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.engine.predict import predict
from geoseg.io.scene import Scene
from geoseg.io.stats import band_quantiles
from geoseg.model.bundle import Normalization, read_meta, set_normalization, weights_path

GAIN = np.array([0.7, 1.3, 1.1, 0.85])
OFFSET = np.array([300.0, -150.0, 40.0, 500.0])


def _shifted(scene, out, gain=GAIN, offset=OFFSET):
    """The scene with y = gain * x + offset per band (float32, nodata kept)."""
    with rasterio.open(scene) as src:
        x = src.read().astype(np.float64)
        valid = src.dataset_mask() > 0
        prof = src.profile
    y = np.where(valid, x * np.c_[gain][..., None] + np.c_[offset][..., None], 0)
    prof.update(dtype="float32", nodata=None)
    with rasterio.open(out, "w", **prof) as dst:
        dst.write(y.astype(np.float32))
        dst.write_mask(valid)
    return out


def _with_quantiles(bundle, scene, out):
    shutil.copytree(bundle, out)
    meta = read_meta(out)
    q = band_quantiles([Scene.of(scene)], meta.bands).tolist()
    set_normalization(out, meta.normalization.model_copy(update={"quantiles": q}))
    return out


def _read(path):
    with rasterio.open(path) as s:
        return s.read(1), s.tags()


def test_scene_and_match_undo_a_per_band_shift(client, synth, bundles, tmp_path):
    scene, _ = synth(300, 340, seed=4, nodata_fraction=0.05)
    shifted = _shifted(scene, tmp_path / "shifted.tif")
    # mean/std of the pixelnet bundle differ from the scene's own: scene mode must still
    # put the shifted scene where the original is for the model
    bundle = _with_quantiles(bundles("pixelnet", tile=128, overlap=32), scene, tmp_path / "b")
    ref, _ = _read(predict(scene, bundle, tmp_path / "ref.tif", block=256, client=client).path)
    agree = {}
    for mode in ("bundle", "scene", "match"):
        res = predict(
            shifted, bundle, tmp_path / f"{mode}.tif", block=256, normalize=mode, client=client
        )
        cls, tags = _read(res.path)
        agree[mode] = (cls == ref).mean()
        assert tags["GEOSEG_NORMALIZE"] == mode
        if mode != "bundle":
            used = json.loads(tags["GEOSEG_RADIOMETRY"])
            assert used["mode"] == mode and len(used["bands"]) == 4
    assert agree["scene"] >= 0.99 and agree["match"] >= 0.99, agree
    assert agree["bundle"] < min(agree["scene"], agree["match"]) - 0.02, agree  # it matters


def test_normalized_maps_are_identical_across_block_sizes_and_workers(
    client, synth, bundles, tmp_path
):
    scene, _ = synth(260, 300, seed=5)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    a = predict(scene, bundle, tmp_path / "a.tif", block=128, normalize="scene", client=client)
    predict(scene, bundle, tmp_path / "b.tif", block=256, normalize="scene", workers=1)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    # the mapping is part of the job key: staged blocks of another mode are never reused
    c = predict(scene, bundle, tmp_path / "c.tif", block=128, client=client, keep_staging=True)
    assert Path(a.staging).name != Path(c.staging).name


def test_bundle_stats_adds_quantiles_and_keeps_the_weights(synth, bundles, tmp_path):
    scene, _ = synth(200, 220, seed=6)
    bundle = tmp_path / "b"
    shutil.copytree(bundles("pixelnet", tile=64, overlap=16), bundle)
    before = read_meta(bundle)
    assert before.normalization.quantiles is None
    weights = weights_path(bundle).read_bytes()
    r = CliRunner().invoke(app, ["bundle", "stats", str(bundle), "--from", str(scene)])
    assert r.exit_code == 0, r.output
    meta = read_meta(bundle)
    q = np.asarray(meta.normalization.quantiles)
    assert q.shape == (4, 101) and np.all(np.diff(q, axis=1) >= 0)
    with rasterio.open(scene) as src:
        band1 = src.read(1)[src.dataset_mask() > 0]
    assert q[0, 0] >= band1.min() and q[0, -1] <= band1.max()
    assert abs(q[0, 50] - np.median(band1)) <= 0.02 * np.ptp(band1)
    assert meta.normalization.mean == before.normalization.mean
    assert weights_path(bundle).read_bytes() == weights
    assert meta.weights_sha256 == before.weights_sha256
    Normalization.model_validate(meta.normalization.model_dump())  # reads back


def test_match_without_quantiles_is_one_line_error_and_no_output(synth, bundles, tmp_path):
    scene, _ = synth(120, 130, seed=7)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    out = tmp_path / "out"
    out.mkdir()
    r = CliRunner().invoke(
        app,
        ["predict", str(scene), "--model", str(bundle), "--out", str(out / "m.tif")]
        + ["--normalize", "match"],
    )
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "geoseg bundle stats" in lines[0] and "--normalize scene" in lines[0]
    r = CliRunner().invoke(
        app,
        ["predict", str(scene), "--model", str(bundle), "--out", str(out / "m.tif")]
        + ["--normalize", "histogram"],
    )
    assert r.exit_code == 2 and "unknown --normalize 'histogram'" in r.output
    assert list(out.iterdir()) == []


def test_auto_keeps_the_bundle_on_its_own_scene_and_standardises_a_shifted_one(
    client, synth, bundles, tmp_path
):
    scene, _ = synth(300, 340, seed=4, nodata_fraction=0.05)
    shifted = _shifted(scene, tmp_path / "shifted.tif")
    bundle = _with_quantiles(bundles("pixelnet", tile=128, overlap=32), scene, tmp_path / "b")
    for src, want in ((scene, "bundle"), (shifted, "scene")):
        explicit, _ = _read(
            predict(src, bundle, tmp_path / f"{want}.tif", normalize=want, client=client).path
        )
        res = predict(src, bundle, tmp_path / f"auto-{want}.tif", client=client)  # the default
        cls, tags = _read(res.path)
        assert res.normalize == tags["GEOSEG_NORMALIZE"] == want
        assert want in ("bundle", "scene") and "training radiometry" in res.normalize_reason
        assert tags["GEOSEG_NORMALIZE_REASON"] == res.normalize_reason
        assert np.array_equal(cls, explicit)  # the same map as asking for it
    # the CLI's last line says what auto chose and why
    r = CliRunner().invoke(
        app,
        ["predict", str(shifted), "--model", str(bundle), "--out", str(tmp_path / "c.tif")]
        + ["--workers", "1"],
    )
    assert r.exit_code == 0, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("normalize auto: scene (band ") and "training radiometry" in last


def test_auto_without_training_quantiles_keeps_the_bundle(client, synth, bundles, tmp_path):
    scene, _ = synth(300, 340, seed=4, nodata_fraction=0.05)
    bundle = bundles("pixelnet", tile=128, overlap=32)
    assert read_meta(bundle).normalization.quantiles is None
    res = predict(scene, bundle, tmp_path / "a.tif", client=client)
    assert res.normalize == "bundle" and "no training quantiles" in res.normalize_reason


def test_a_bundle_trained_on_varied_scenes_tolerates_as_much(synth, bundles, tmp_path):
    """auto's threshold grows with the spread of the bundle's own training scenes, which
    geoseg bundle stats records from several scenes."""
    from geoseg.core.radiometry import AUTO_FLOOR, auto_threshold, choose_auto

    scene, _ = synth(300, 340, seed=4)
    shifted = _shifted(scene, tmp_path / "shifted.tif", gain=np.full(4, 1.6), offset=np.zeros(4))
    b = tmp_path / "b"
    shutil.copytree(bundles("pixelnet", tile=128, overlap=32), b)
    r = CliRunner().invoke(app, ["bundle", "stats", str(b), "--from", str(scene)])
    assert r.exit_code == 0, r.output
    one = read_meta(b).normalization
    assert one.spread == 0 and auto_threshold(one.spread) == AUTO_FLOOR
    r = CliRunner().invoke(
        app, ["bundle", "stats", str(b), "--from", str(scene), "--from", str(shifted)]
    )
    assert r.exit_code == 0, r.output
    two = read_meta(b).normalization
    assert two.spread > AUTO_FLOOR and two.mean == one.mean
    q = band_quantiles([Scene.of(shifted)], [1, 2, 3, 4])
    assert choose_auto(q, np.asarray(one.quantiles), one.spread)[0] == "scene"
    assert choose_auto(q, np.asarray(two.quantiles), two.spread)[0] == "bundle"

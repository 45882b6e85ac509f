"""Test-time augmentation: the views are turned back exactly, and the averaged prediction is
invariant under the symmetries it averages over; the engine writes what it was asked."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.engine.predict import predict
from geoseg.errors import GeoSegError
from geoseg.model.runner import TilePredictor


def _tiles(n: int, bands: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth random fields (a per-pixel noise image would hide misplaced views less well)
    x = rng.normal(size=(n, bands, size // 8, size // 8)).astype(np.float32)
    return np.kron(x, np.ones((1, 1, 8, 8), np.float32)) + rng.normal(
        scale=0.1, size=(n, bands, size, size)
    ).astype(np.float32)


@pytest.mark.parametrize("tta", ["flips", "d4"])
def test_views_are_turned_back_to_the_right_pixels(bundles, tta):
    # pixelnet's output at a pixel depends on that pixel alone: every view, turned back,
    # must give the plain prediction, pixel for pixel
    b = bundles("pixelnet", tile=64, overlap=16)
    x = _tiles(2, 4, 64, seed=1)
    plain = TilePredictor(str(b)).predict(x)
    views = TilePredictor(str(b), tta=tta).predict(x)
    assert np.allclose(views, plain, atol=1e-6)
    assert np.allclose(views.sum(axis=1), 1, atol=1e-5)


def test_d4_average_is_invariant_under_the_square_symmetries(bundles):
    b = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    x = _tiles(1, 4, 128, seed=2)
    plain = TilePredictor(str(b))
    d4 = TilePredictor(str(b), tta="d4")
    turned = np.ascontiguousarray(np.rot90(x, 1, axes=(2, 3))[..., ::-1])
    # one view's prediction moves with the image only approximately (a CNN is not equivariant)
    p, q = plain.predict(x), plain.predict(turned)
    assert not np.allclose(np.rot90(p, 1, axes=(2, 3))[..., ::-1], q, atol=1e-4)
    # the average over all eight views moves with it exactly (up to float rounding)
    p, q = d4.predict(x), d4.predict(turned)
    assert np.allclose(np.rot90(p, 1, axes=(2, 3))[..., ::-1], q, atol=1e-5)


def test_engine_writes_tta_maps_and_refuses_unknown_views(synth, bundles, client, tmp_path):
    scene, _ = synth(200, 170, patch=40, seed=3)
    b = str(bundles("pixelnet", tile=64, overlap=16))
    plain = predict(scene, b, tmp_path / "plain.tif", client=client, block=128)
    views = predict(scene, b, tmp_path / "flips.tif", client=client, block=128, tta="flips")
    assert plain.staging != views.staging  # another job: staged blocks are not mixed up
    with rasterio.open(plain.path) as a, rasterio.open(views.path) as v:
        assert v.tags()["GEOSEG_TTA"] == "flips" and a.tags()["GEOSEG_TTA"] == "none"
        same = a.read(1) == v.read(1)
    assert same.mean() > 0.999  # per-pixel model: the same map but for float near-ties
    with pytest.raises(GeoSegError, match="unknown test-time augmentation 'd8'"):
        predict(scene, b, tmp_path / "bad.tif", client=client, tta="d8")
    r = CliRunner().invoke(
        app, ["predict", str(scene), "--model", b, "--out", str(tmp_path / "x.tif"), "--tta", "x"]
    )
    assert r.exit_code == 2 and "use one of none, flips, d4" in r.output
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "bad.tif").exists()


def test_workflow_predict_takes_tta_and_names_a_wrong_one():
    from geoseg.workflow.config import load_workflow

    base = {"name": "t", "output": "out", "model": "m", "predict": {"scene": "s.tif"}}
    cfg, _, _ = load_workflow({**base, "predict": {"scene": "s.tif", "tta": "flips"}})
    assert cfg.predict.tta == "flips" and load_workflow(base)[0].predict.tta == "none"
    with pytest.raises(GeoSegError, match=r"predict\.tta") as e:
        load_workflow({**base, "predict": {"scene": "s.tif", "tta": "d8"}})
    assert "\n" not in str(e.value)

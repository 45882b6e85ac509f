"""Baselines: OBIA, pixel random forest and Otsu on synthetic scenes and a real local cluster."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
import yaml
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from geoseg.baseline.config import BaselineConfig, load_baseline
from geoseg.baseline.features import ANGLES, FeatureSpec, object_features
from geoseg.baseline.heldout import write_heldout_reference
from geoseg.baseline.obia import run_obia
from geoseg.baseline.objects import paint
from geoseg.baseline.otsu import run_otsu
from geoseg.baseline.pixel import run_pixel_rf
from geoseg.baseline.stitch import components, joined_classes, seam_pairs
from geoseg.cli.main import app
from geoseg.errors import GeoSegError

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
H, W = 144, 176
BUFFER = 8


@pytest.fixture(scope="module")
def scene(synth):
    return synth(H, W, patch=36, seed=11)


def _config(scene, tmp_path, **kw) -> dict:
    image, labels = scene
    train = {
        "classes": CLASSES5,
        "output": str(tmp_path / "bundle"),
        "scenes": [{"image": str(image), "labels": str(labels), "role": "split"}],
        "split": {"mode": "halves", "axis": "x", "buffer": BUFFER},
    }
    cfg = {
        "train_config": train,
        "segmentation": {"method": "slic", "size": 6},
        "band_roles": {"green": 2, "red": 3, "nir": 4},
        "classifier": {"params": {"n_estimators": 60}},
        "block": 64,
        "halo": 16,
        "pixel": {"samples_per_class": 2000},
    }
    cfg.update(kw)
    return cfg


def _read(path):
    with rasterio.open(path) as s:
        return s.read(1)


def _east(scene):
    """Held-out labels (the east half) and a mask of them."""
    labels = _read(scene[1])
    held = np.zeros(labels.shape, bool)
    held[:, W // 2 :] = True
    return labels, held & (labels > 0)


def _chance(labels: np.ndarray) -> float:
    """Accuracy of always mapping the most frequent held-out class."""
    return np.bincount(labels.ravel(), minlength=6)[1:].max() / labels.size


def test_obia_learns_and_writes_an_engine_like_cog(client, scene, tmp_path):
    res = run_obia(_config(scene, tmp_path), tmp_path / "obia.tif", client=client)
    labels, held = _east(scene)
    out = _read(res.map_path)
    oa = (out[held] == labels[held]).mean()
    chance = _chance(labels[held])
    assert oa > chance + 0.6 * (1 - chance), (oa, chance)
    rep = res.report
    assert res.seconds > 0 and res.map_paths == [res.map_path]
    assert rep["objects"]["mean_size_px"] == pytest.approx(36, rel=0.5)  # SLIC size 6
    assert rep["objects"]["training"] > 50
    assert rep["segmentation_ceiling"]["oa"] >= oa - 0.02  # no classifier beats its objects
    assert "ndvi_mean" in rep["features"] and "glcm_contrast" in rep["features"]
    assert json.loads(res.report_path.read_text())["method"] == "obia"
    ok, errors, _ = cog_validate(str(res.map_path))
    assert ok, errors
    with rasterio.open(res.map_path) as s, rasterio.open(scene[0]) as src:
        assert s.crs == src.crs and s.transform == src.transform and s.nodata == 0
        assert s.colormap(1)[1][:3] != s.colormap(1)[2][:3]
        assert "class1" in s.tags(1)["CLASSES"] and s.tags()["GEOSEG_METHOD"] == "obia"
    cats = [c.text or "" for c in ET.parse(f"{res.map_path}.aux.xml").iter("Category")]
    assert cats[:3] == ["nodata", "class1", "class2"]
    assert res.map_path.with_suffix(".qml").exists()
    assert not list(tmp_path.glob(".geoseg-*"))  # staging removed


def test_blockwise_obia_matches_whole_scene_at_block_edges(client, scene, tmp_path):
    """Blocks of 64 px with a 16 px halo against one block for the whole scene: the same
    accuracy, and no worse agreement along the block edges than elsewhere (parts of objects
    cut by an edge are joined); the run is reproducible."""
    tiled = run_obia(_config(scene, tmp_path), tmp_path / "tiled.tif", client=client)
    whole = run_obia(_config(scene, tmp_path, block=1024), tmp_path / "whole.tif", client=client)
    again = run_obia(_config(scene, tmp_path), tmp_path / "again.tif", client=client)
    a, b = _read(tiled.map_path), _read(whole.map_path)
    np.testing.assert_array_equal(a, _read(again.map_path))
    labels, held = _east(scene)
    oa_a, oa_b = (a[held] == labels[held]).mean(), (b[held] == labels[held]).mean()
    assert abs(oa_a - oa_b) < 0.03, (oa_a, oa_b)
    edge = np.zeros(a.shape, bool)
    for k in range(64, max(H, W), 64):
        edge[max(k - 3, 0) : k + 3] = True
        edge[:, max(k - 3, 0) : k + 3] = True
    agree = a == b
    assert agree.mean() > 0.9
    assert agree[edge].mean() > agree[~edge].mean() - 0.05, (
        agree[edge].mean(),
        agree[~edge].mean(),
    )
    o = tiled.report["objects"]
    assert o["parts_joined_across_block_edges"] > o["objects_from_joined_parts"] > 0
    assert whole.report["objects"]["parts_joined_across_block_edges"] == 0


def test_stitch_joins_parts_where_both_blocks_agree():
    # two blocks side by side; block A's right strip and B's left strip over 4 rows
    res = {
        (0, 0, 0): {"strips": {"right": (np.array([0, 0, 1, 2]), np.array([1, 1, 1, 0], bool))}},
        (0, 0, 1): {"strips": {"left": (np.array([0, 1, 1, 2]), np.array([1, 0, 1, 1], bool))}},
    }
    pairs = seam_pairs(res, {(0, 0, 0): 0, (0, 0, 1): 10})
    # row 0: both agree (A0-B10); row 1: B says no; row 2: A1-B11; row 3: A says no
    np.testing.assert_array_equal(pairs, [[0, 10], [1, 11]])
    nodes, comp = components(np.array([[0, 10], [1, 11], [11, 20]]))
    np.testing.assert_array_equal(nodes, [0, 1, 10, 11, 20])
    assert comp[0] == comp[2] and comp[1] == comp[3] == comp[4] and comp[0] != comp[1]
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55]])
    area = np.array([10, 1, 30, 5, 5])
    # component {0, 10}: 10*0.9 + 30*0.2 = 15 vs 10*0.1 + 30*0.8 = 25 -> class 1
    np.testing.assert_array_equal(joined_classes(comp, probs, area), [1, 1, 1, 1, 1])
    # painting: objects' own classes, overridden for the joined parts, nodata outside
    arrays = {"lab": np.array([[0, 1], [-1, 2]]), "cls": np.array([0, 0, 1], np.uint8)}
    out = paint(arrays, (np.array([7, 9], np.uint8), 0, np.array([1]), np.array([1])))
    np.testing.assert_array_equal(out, [[7, 9], [0, 9]])


def test_object_features_against_numpy_and_skimage():
    rng = np.random.default_rng(0)
    x = rng.uniform(100, 200, (3, 9, 11)).astype(np.float32)
    lab = np.zeros((9, 11), np.int32)  # objects 0, 1, 2; -1 = no object
    lab[:, 5:] = 1
    lab[6:, :5] = 2
    lab[0, 0] = lab[8, 10] = -1
    cfg = BaselineConfig(train_config="x.yaml", band_roles={"red": 1, "nir": 2})
    spec = FeatureSpec.of(cfg, [1, 2, 3])
    m = int(lab.max()) + 1
    f = object_features(x, x / 100, lab, m, spec)
    names = spec.names()
    assert f.shape == (m, len(names))
    for k in range(m):
        v = x[:, lab == k]
        assert f[k, names.index("mean_b2")] == pytest.approx(v[1].mean(), rel=1e-5)
        assert f[k, names.index("std_b3")] == pytest.approx(v[2].std(), rel=1e-4)
        assert f[k, names.index("p90_b1")] == pytest.approx(np.percentile(v[0], 90), rel=1e-5)
        nd = (v[1] - v[0]) / (v[1] + v[0])
        assert f[k, names.index("ndvi_mean")] == pytest.approx(nd.mean(), rel=1e-4)
        assert f[k, names.index("area")] == (lab == k).sum()
    assert (f[:, names.index("compactness")] > 0).all()
    # texture and shape: each object alone through skimage
    from skimage.feature import graycomatrix, graycoprops
    from skimage.measure import regionprops

    q = np.clip(np.floor(((x / 100).mean(axis=0) + 2.5) / 5 * 16), 0, 15).astype(np.uint8) + 1
    for k, rp in enumerate(regionprops(lab + 1)):
        glcm = graycomatrix(np.where(lab == k, q, 0), [1], ANGLES, levels=17, symmetric=True)
        for prop in ("contrast", "homogeneity", "energy", "correlation"):
            expect = np.nan_to_num(graycoprops(glcm[1:, 1:], prop)).mean()
            assert f[k, names.index(f"glcm_{prop}")] == pytest.approx(expect, rel=1e-4, abs=1e-6)
        assert f[k, names.index("eccentricity")] == pytest.approx(rp.eccentricity, rel=1e-4)
        assert f[k, names.index("perimeter")] == pytest.approx(rp.perimeter, rel=1e-5)


def test_pixel_rf_learns(client, scene, tmp_path):
    res = run_pixel_rf(_config(scene, tmp_path), tmp_path / "px.tif", client=client)
    labels, held = _east(scene)
    out = _read(res.map_path)
    chance = _chance(labels[held])
    assert (out[held] == labels[held]).mean() > chance + 0.6 * (1 - chance)
    assert res.report["training_pixels"]["total"] >= 5 * 300
    assert res.report["features"][-2:] == ["ndvi", "ndwi"]


def test_heldout_reference_is_the_east_half(scene, tmp_path):
    (path,) = write_heldout_reference(_config(scene, tmp_path), tmp_path / "ref.tif")
    ref = _read(path)
    labels = _read(scene[1])
    assert (ref[:, : W // 2] == 0).all()
    np.testing.assert_array_equal(ref[:, W // 2 :], labels[:, W // 2 :])


def test_otsu_separates_water(client, tmp_path):
    rng = np.random.default_rng(3)
    water = np.zeros((90, 120), bool)
    water[20:70, 30:100] = True
    green = np.where(water, 900, 600) + rng.normal(0, 40, water.shape)
    nir = np.where(water, 300, 1800) + rng.normal(0, 80, water.shape)
    img = np.stack([green, nir]).astype(np.uint16)
    path = tmp_path / "two.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=90,
        width=120,
        count=2,
        dtype="uint16",
        crs="EPSG:32612",
        transform=rasterio.transform.from_origin(0, 900, 10, 10),
    ) as d:
        d.write(img)
    res = run_otsu(
        path, tmp_path / "otsu.tif", index="ndwi", bands="green=1,nir=2", block=64, client=client
    )
    out = _read(res.map_path)
    assert ((out == 1) == water).mean() > 0.99
    from skimage.filters import threshold_otsu

    ndwi = (img[0].astype(float) - img[1]) / (img[0].astype(float) + img[1])
    assert res.report["threshold"] == pytest.approx(threshold_otsu(ndwi), abs=0.01)
    with rasterio.open(res.map_path) as s:
        assert "Water" in s.tags(1)["CLASSES"]
    with pytest.raises(GeoSegError, match="green and nir"):
        run_otsu(path, tmp_path / "o2.tif", index="ndwi", bands="red=1,nir=2")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"segmentaton": {}}, "unknown key 'segmentaton'"),
        ({"segmentation": {"method": "slic", "sise": 5}}, "unknown key"),
        ({"segmentation": {"method": "kmeans"}}, "segmentation"),
        ({"classifier": {"params": {"n_estimator": 5}}}, "not arguments of sklearn"),
        ({"band_roles": {"nir": 9, "red": 3}}, "band_roles name band"),
        ({"halo": 64}, "halo"),
    ],
)
def test_bad_configs_are_one_line_errors(scene, tmp_path, change, match):
    cfg = {**_config(scene, tmp_path), **change}
    with pytest.raises(GeoSegError, match=match) as e:
        run_obia(cfg, tmp_path / "x.tif")
    assert "\n" not in str(e.value)


def test_yaml_config_and_cli(scene, tmp_path):
    cfg = _config(scene, tmp_path)
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg.pop("train_config")))
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump({"train_config": "train.yaml", **cfg, "output": "out"})
    )
    b = load_baseline(tmp_path / "base.yaml")
    assert b.output(None, "obia") == tmp_path / "out" / "obia"
    assert load_baseline(tmp_path / "train.yaml").cfg.segmentation.method == "slic"
    (tmp_path / "bad.yaml").write_text("train_config: train.yaml\nblock: [1\n")
    r = CliRunner().invoke(app, ["baseline", "obia", str(tmp_path / "bad.yaml")])
    assert r.exit_code == 2 and "not valid YAML" in r.output
    r = CliRunner().invoke(
        app,
        ["baseline", "otsu", str(scene[0]), "--out", str(tmp_path / "o.tif"), "--bands", "green"],
    )
    assert r.exit_code == 2 and "ROLE=BAND" in r.output


def test_obia_with_an_svm_and_felzenszwalb(client, scene, tmp_path):
    cfg = _config(
        scene,
        tmp_path,
        classifier={"kind": "svm", "params": {"C": 10}},
        segmentation={"method": "felzenszwalb", "scale": 50, "min_size": 20},
    )
    res = run_obia(cfg, tmp_path / "svm.tif", client=client)
    labels, held = _east(scene)
    out = _read(res.map_path)
    chance = _chance(labels[held])
    assert (out[held] == labels[held]).mean() > chance + 0.5 * (1 - chance)
    assert res.report["classifier"]["kind"] == "svm"


@pytest.mark.parametrize(
    "seg",
    [
        {"method": "slic", "size": 6},
        {"method": "felzenszwalb", "scale": 20},
        {"method": "quickshift", "kernel_size": 2, "max_dist": 4},
        {"method": "watershed", "size": 6},
    ],
)
def test_every_segmentation_partitions_the_valid_pixels(seg):
    from geoseg.baseline.segment import segment

    rng = np.random.default_rng(1)
    z = rng.normal(0, 0.2, (3, 40, 50)).astype(np.float32)
    z[:, :, 25:] += 2  # two halves of distinct colour
    valid = np.ones((40, 50), bool)
    valid[:5, :5] = False
    method = BaselineConfig(train_config="x.yaml", segmentation=seg).segmentation
    lab = segment(z, valid, method)
    assert (lab[~valid] == -1).all() and (lab[valid] >= 0).all()
    ids = np.unique(lab[valid])
    np.testing.assert_array_equal(ids, np.arange(len(ids)))  # 0..k-1, none empty
    assert 1 < len(ids) < valid.sum() / 4
    assert not (set(np.unique(lab[:, :24])) & set(np.unique(lab[:, 26:])))  # no object spans

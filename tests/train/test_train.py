"""Training: learning on a synthetic scene, predicting through the engine, vector labels in
another CRS, leak-free splits, config errors, checkpoints and resume."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import torch
import yaml
from rasterio.features import shapes
from scipy import ndimage
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene
from geoseg.io.stats import band_stats
from geoseg.model.bundle import read_meta
from geoseg.model.factory import load_model
from geoseg.train.checkpoint import read_state
from geoseg.train.config import LossConfig, load_config
from geoseg.train.data import open_scenes
from geoseg.train.heldout import evaluate_heldout
from geoseg.train.labels import IGNORE, LabelSource
from geoseg.train.losses import SegmentationLoss, auto_class_weights
from geoseg.train.prepare import prepare
from geoseg.train.train import train

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
FAST = {"architecture": "pixelnet", "tile": 64, "overlap": 16}


def _config(scene, labels, out, **over) -> dict:
    cfg = {
        "classes": CLASSES5,
        "scenes": [{"image": str(scene), "labels": str(labels)}],
        "split": {"mode": "blocks", "block": 64, "val_fraction": 0.25, "buffer": 8},
        "model": FAST,
        "training": {
            "epochs": 2,
            "samples_per_epoch": 32,
            "batch_size": 8,
            "crop": 64,
            "val_window": 64,
            "threads": 1,
            "early_stopping": None,
        },
        "output": str(out),
    }
    for k, v in over.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


def test_short_run_learns_and_its_bundle_maps_through_the_engine(synth, client, tmp_path):
    scene, labels = synth(256, 256, patch=48, seed=4)
    cfg = _config(
        scene,
        labels,
        tmp_path / "model",
        model={
            "architecture": "deeplabv3plus",
            "encoder": "tu-mobilenetv3_small_100",
            "tile": 128,
            "overlap": 32,
        },
        training={
            "epochs": 4,
            "samples_per_epoch": 48,
            "lr": 3e-3,
            "crop": 96,
            "augment": {"scale": [0.5, 2.0]},  # zoomed crops train as well as plain ones
        },
    )
    res = train(cfg)
    h = res.history
    assert len(h) == 4 and h[-1]["train_loss"] < h[0]["train_loss"]
    assert res.best_miou > 2 / 5
    meta = read_meta(res.bundle)
    assert meta.architecture == "deeplabv3plus" and meta.provenance["trained"]
    assert meta.provenance["best_val_miou"] == pytest.approx(res.best_miou)
    assert meta.provenance["config"]["training"]["epochs"] == 4
    assert res.history_csv.read_text().startswith("epoch,lr,train_loss,val_loss,val_oa")
    assert res.curves_png.stat().st_size > 1000
    # band statistics come from the training pixels and travel in the bundle
    with rasterio.open(scene) as src:
        img = src.read().astype(np.float64)
    assert np.allclose(meta.normalization.mean, img.mean(axis=(1, 2)), rtol=0.1)
    q = np.asarray(meta.normalization.quantiles)  # for --normalize scene|match
    assert q.shape == (4, 101) and np.all(np.diff(q, axis=1) >= 0)
    assert np.allclose(q[:, 50], np.median(img, axis=(1, 2)), rtol=0.1)
    # the held-out blocks predicted through the engine, as a user would map them
    ev = evaluate_heldout(
        cfg, res.bundle, tmp_path / "maps", roles=("val",), client=client, block=128
    )
    s = ev.summary()
    assert s["pixels"] > 5000 and s["oa"] > 0.6 and s["miou"] > 2 / 5
    with rasterio.open(ev.maps[0]) as src:
        assert src.shape == (256, 256) and src.crs is not None


def _polygons(labels_path, crs: str):
    with rasterio.open(labels_path) as src:
        lab, tf, src_crs = src.read(1), src.transform, src.crs
    geoms = [(shapely.geometry.shape(g), int(v)) for g, v in shapes(lab, transform=tf) if v]
    gdf = gpd.GeoDataFrame(
        {"class_id": [v for _, v in geoms], "name": [f"CLASS{v}" for _, v in geoms]},
        geometry=[g for g, _ in geoms],
        crs=src_crs,
    )
    return lab, gdf.to_crs(crs)


def test_polygon_labels_in_another_crs_are_reprojected_and_rasterised(synth, tmp_path):
    scene, labels = synth(192, 160, patch=40, seed=2)
    lab, gdf = _polygons(labels, "EPSG:4326")
    gpkg = tmp_path / "polys.gpkg"
    gdf.to_file(gpkg, layer="labels")
    classes = load_classes(CLASSES5)
    info = Scene.of(scene).info
    for field in ("class_id", "name"):  # numeric ids, or class names (case-insensitive)
        src = LabelSource(str(gpkg), info, classes, [0], field)
        got = src.read(Window(0, 0, info.height, info.width))
        labelled = got != IGNORE
        assert labelled.mean() > 0.97
        assert (got[labelled] + 1 == lab[labelled]).mean() > 0.97
    # beyond the border windows are mirrored, as for images
    edge = src.read(Window(-8, -8, 16, 16))
    assert np.array_equal(edge[8:, 8:], got[:8, :8]) and np.array_equal(edge[7], edge[8])
    # points too, and a full (one-epoch) training run on the polygons
    res = train(
        _config(
            scene,
            gpkg,
            tmp_path / "m",
            training={"epochs": 1},
            scenes=[{"image": str(scene), "labels": str(gpkg)}],
        )
    )
    assert res.meta.provenance["train_pixels"]["class1"] > 0


@pytest.mark.parametrize(
    "split",
    [
        {"mode": "blocks", "block": 48, "val_fraction": 0.3, "buffer": 12, "seed": 3},
        {"mode": "halves", "axis": "x", "buffer": 10},
        {"mode": "halves", "axis": "y", "buffer": 5},
    ],
)
def test_training_windows_never_reach_validation_or_its_buffer(synth, tmp_path, split):
    scene, labels = synth(240, 208, patch=40, seed=1)
    cfg = load_config(
        _config(scene, labels, tmp_path / "m", split=split, training={"crop": 32}, cache_mb=0)
    )
    data = prepare(cfg, load_classes(CLASSES5))
    (sp,) = data.splits
    val = np.zeros((240, 208), dtype=bool)
    for r0, c0, r1, c1 in sp.val:
        val[r0:r1, c0:c1] = True
    if split["mode"] == "halves":  # the east (south) half validates, independently of sp.val
        expect = np.zeros_like(val)
        if split["axis"] == "x":
            expect[:, 104:] = True
        else:
            expect[120:] = True
        assert np.array_equal(val, expect)
    else:
        assert 0.15 < val.mean() < 0.45
    b = split["buffer"]
    near = ndimage.binary_dilation(val, structure=np.ones((2 * b + 1, 2 * b + 1), bool))
    nearer = ndimage.binary_dilation(near, iterations=2)
    rng = np.random.default_rng(0)
    close = 0
    for _ in range(600):
        s, w = data.sampler.sample(rng)
        assert s == 0 and w.height == w.width == 32
        assert w.row >= 0 and w.row_end <= 240 and w.col >= 0 and w.col_end <= 208
        assert not near[w.slices()].any()
        close += nearer[w.slices()].any()
    assert close > 0  # windows do come right up to the buffer: the check is not vacuous


def test_cached_and_window_by_window_reads_agree(synth, tmp_path):
    scene, labels = synth(100, 90, patch=30, seed=5, nodata_fraction=0.2)
    classes = load_classes(CLASSES5)
    cached, _ = open_scenes(load_config(_config(scene, labels, tmp_path)), classes)
    direct, _ = open_scenes(load_config(_config(scene, labels, tmp_path, cache_mb=0)), classes)
    assert cached[0].cached is not None and direct[0].cached is None
    for w in (Window(10, 20, 32, 32), Window(80, 70, 32, 32), Window(0, 0, 128, 128)):
        for a, b in zip(cached[0].read(w), direct[0].read(w), strict=True):
            assert np.array_equal(a, b)
        assert np.array_equal(cached[0].read_labels(w), direct[0].read_labels(w))
    x, valid, y = direct[0].read(Window(0, 0, 100, 90))
    assert (~valid).any() and (y[~valid] == IGNORE).all()


def test_resume_continues_from_the_checkpoint(synth, tmp_path):
    scene, labels = synth(160, 160, patch=40, seed=3, crs=None)  # no CRS, like Dubai
    # fp32 asked for: 'auto' times both precisions on a bf16 CPU and the two runs compared
    # here could choose differently (tests/train/test_precision.py covers auto on resume)
    over = {
        "training": {"epochs": 3, "precision": "fp32"},
        "split": {"mode": "halves", "buffer": 4},
    }
    full = train(_config(scene, labels, tmp_path / "a", **over))

    class Crash(Exception):
        pass

    def crash_after_2(row):
        if row["epoch"] == 2:
            raise Crash

    cfg = _config(scene, labels, tmp_path / "b", **over)
    with pytest.raises(Crash):
        train(cfg, on_epoch=crash_after_2)
    ck = tmp_path / "b.checkpoint"  # beside the bundle folder, not inside it
    assert read_state(ck)["epoch"] == 2 and not (tmp_path / "b" / "checkpoint").exists()
    assert {p.suffix for p in ck.iterdir()} == {".safetensors", ".json"}  # no pickles
    seen = []
    res = train(cfg, resume=True, on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [3] and [r["epoch"] for r in res.history] == [1, 2, 3]
    assert not ck.exists()  # a finished training leaves no resume state behind
    a, _ = load_model(full.bundle)
    b, _ = load_model(res.bundle)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    for r1, r2 in zip(res.history, full.history, strict=True):
        assert (r1["train_loss"], r1["val_miou"]) == (r2["train_loss"], r2["val_miou"])
    # a changed model cannot resume from this checkpoint
    with pytest.raises(GeoSegError, match="run without --resume"):
        train(
            _config(
                scene, labels, tmp_path / "b", **over, model={**FAST, "arch_kwargs": {"hidden": 8}}
            ),
            resume=True,
        )
    with pytest.raises(GeoSegError, match="no checkpoint"):
        train(_config(scene, labels, tmp_path / "c", **over), resume=True)


@pytest.mark.parametrize(
    "text, expect",
    [
        (
            "classes: c.json\nscenes: [{image: a.tif}]\noutput: o\ntraining: {epoch: 3}\n",
            "unknown key 'training.epoch'",
        ),
        ("classes: c.json\nscenes: [{image: a.tif, role: trian}]\noutput: o\n", "scenes[0].role"),
        (
            "classes: c.json\nscenes: [{image: a.tif}]\noutput: o\ntraining: {crop: 100}\n",
            "training.crop: must be a multiple of 32",
        ),
        ("classes: c.json\nscenes: [{image: a.tif}]\n", "missing required key 'output'"),
        ("classes: c.json\nscenes: [{image: a.tif}\n", "is not valid YAML at line"),
        ("- 1\n- 2\n", "expected a mapping"),
        (
            "classes: c.json\nscenes: [{image: a.tif}]\noutput: o\ntraining: {loss: {ce: 0}}\n",
            "all loss weights are 0",
        ),
        (
            "classes: c.json\nscenes: [{image: a.tif}]\noutput: o\n"
            "training: {augment: {scale: [2, 0.5]}}\n",
            "training.augment.scale: scale is [min, max]",
        ),
    ],
)
def test_config_errors_are_one_line(tmp_path, text, expect):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(GeoSegError) as e:
        load_config(path)
    assert expect in str(e.value) and "\n" not in str(e.value)
    r = CliRunner().invoke(app, ["train", str(path)])
    assert r.exit_code == 2 and expect in r.output and "Traceback" not in r.output


def test_data_errors_are_one_line(synth, tmp_path):
    scene, labels = synth(96, 96, patch=30, seed=1)
    bad = [
        ({"scenes": [{"image": str(scene), "labels": str(tmp_path / "none.tif")}]}, "do not exist"),
        (
            {"scenes": [{"image": str(scene), "labels": str(labels), "role": "train"}]},
            "no validation pixels",
        ),
        (
            {"training": {"crop": 64}, "split": {"mode": "halves", "buffer": 4}},
            "cannot place training windows",
        ),
        ({"bands": [1, 9]}, "has 4 band(s)"),
    ]
    for over, expect in bad:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(_config(scene, labels, tmp_path / "o", **over)))
        r = CliRunner().invoke(app, ["train", str(path)])
        assert r.exit_code == 2 and expect in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1


def test_globbed_scenes_with_roles_and_relative_paths(synth, tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for k in range(3):
        scene, labels = synth(96, 96, patch=30, seed=10 + k, crs=None)
        (d / f"image_{k}.tif").write_bytes(scene.read_bytes())
        (d / f"label_{k}.tif").write_bytes(labels.read_bytes())
    cfg = {
        "root": "data",
        "classes": CLASSES5,
        "output": "../out",
        "scenes": [
            {"image": "image_[01].tif", "labels": "label_[01].tif", "role": "train"},
            {"image": "image_2.tif", "labels": "label_2.tif", "role": "val"},
        ],
    }
    path = tmp_path / "cfg" / "c.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(GeoSegError, match="no file matches"):
        load_config(path)
    cfg["root"] = "../data"
    path.write_text(yaml.safe_dump(cfg))
    got = load_config(path)
    assert [s.role for s in got.scenes] == ["train", "train", "val"]
    assert got.scenes[1].image.endswith("image_1.tif")
    assert got.scenes[1].labels.endswith("label_1.tif")
    assert got.output == str(tmp_path / "out")  # relative to the config file, not root
    data = prepare(got, load_classes(CLASSES5))
    assert [sp.has_val for sp in data.splits] == [False, False, True]


def test_losses_ignore_unlabelled_pixels_and_weight_rare_classes():
    w = auto_class_weights(np.array([900, 100, 0]))
    assert w[2] == 0 and w[1] / w[0] == pytest.approx(3.0)
    assert (w * [900, 100, 0]).sum() / 1000 == pytest.approx(1.0)
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0] = IGNORE
    for cfg in (LossConfig(), LossConfig(ce=0, dice=1), LossConfig(ce=0.5, focal=1)):
        loss = SegmentationLoss(cfg)(logits, target)
        (g,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and g[0].abs().max() == 0 and g[1].abs().max() > 0
    focal0 = SegmentationLoss(LossConfig(ce=0, focal=1, focal_gamma=0))(logits, target)
    ce = SegmentationLoss(LossConfig())(logits, target)
    assert focal0.item() == pytest.approx(ce.item())


def test_band_stats_over_windows(synth):
    scene, _ = synth(120, 100, patch=30, seed=6)
    wins = [Window(0, 0, 50, 100), Window(80, 10, 40, 30)]
    mean, std = band_stats(scene, [2, 3], windows=wins)
    with rasterio.open(scene) as src:
        a = src.read([2, 3]).astype(np.float64)
    px = np.concatenate([a[:, :50].reshape(2, -1), a[:, 80:120, 10:40].reshape(2, -1)], axis=1)
    assert np.allclose(mean, px.mean(axis=1)) and np.allclose(std, px.std(axis=1))


def test_encoder_weights_from_a_local_file(synth, tmp_path):
    from safetensors.torch import save_file

    from geoseg.model.bundle import BundleMeta, Normalization
    from geoseg.model.factory import build_model
    from geoseg.train.encoder_weights import load_encoder_weights

    meta = BundleMeta(
        architecture="unet",
        encoder="resnet18",
        in_channels=4,
        bands=[1, 2, 3, 4],
        normalization=Normalization(mean=[0.0] * 4, std=[1.0] * 4),
        classes=load_classes(CLASSES5).classes,
    )
    torch.manual_seed(1)
    donor = build_model(
        meta.model_copy(
            update={
                "in_channels": 3,
                "bands": [1, 2, 3],
                "normalization": Normalization(mean=[0.0] * 3, std=[1.0] * 3),
            }
        )
    )
    save_file(
        {f"encoder.{k}": v.contiguous() for k, v in donor.encoder.state_dict().items()},
        str(tmp_path / "enc.safetensors"),
    )
    torch.manual_seed(2)
    model = build_model(meta)
    done = load_encoder_weights(model, tmp_path / "enc.safetensors")
    # conv1 (3 vs 4 bands) is adapted as smp adapts its own: the RGB filters cycled, x 3/4
    assert done["skipped"] == 0 and done["loaded"] == done["total"]
    w3, w4 = donor.encoder.conv1.weight, model.encoder.conv1.weight
    assert torch.allclose(w4, w3[:, [0, 1, 2, 0]] * 0.75)
    assert torch.equal(model.encoder.layer1[0].conv1.weight, donor.encoder.layer1[0].conv1.weight)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(GeoSegError, match="weights_only"):
        load_encoder_weights(model, tmp_path / "junk.pth")
    assert json.loads(json.dumps(done)) == done


def test_cli_trains_and_resumes(synth, tmp_path):
    scene, labels = synth(160, 160, patch=40, seed=7)
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            _config(
                scene,
                labels,
                "model",
                training={"epochs": 1},
                split={"mode": "halves", "axis": "y"},
            )
        )
    )
    r = CliRunner().invoke(app, ["train", str(path), "--keep-checkpoint"])
    assert r.exit_code == 0, r.output
    assert "best epoch 1/1" in r.output and (tmp_path / "model" / "bundle.json").exists()
    cfg = yaml.safe_load(path.read_text())
    cfg["training"]["epochs"] = 2  # a longer run continues the finished one it kept
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(app, ["train", str(path), "--resume", "--keep-checkpoint"])
    assert r.exit_code == 0, r.output
    assert read_state(tmp_path / "model.checkpoint")["epoch"] == 2


def test_label_raster_on_another_grid_is_warped_onto_the_image(synth, tmp_path):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    scene, labels = synth(150, 130, patch=40, seed=8)
    with rasterio.open(labels) as src:
        lab = src.read(1)
        tf, w, h = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds
        )
        out = np.zeros((h, w), dtype=np.uint8)
        reproject(
            lab,
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            dst_transform=tf,
            dst_crs="EPSG:4326",
            resampling=Resampling.nearest,
            src_nodata=0,
            dst_nodata=0,
        )
    warped = tmp_path / "labels_4326.tif"
    with rasterio.open(
        warped,
        "w",
        driver="GTiff",
        height=h,
        width=w,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=tf,
        nodata=0,
    ) as dst:
        dst.write(out, 1)
    info = Scene.of(scene).info
    got = LabelSource(str(warped), info, load_classes(CLASSES5), [0]).read(
        Window(0, 0, info.height, info.width)
    )
    labelled = got != IGNORE
    assert labelled.mean() > 0.9 and (got[labelled] + 1 == lab[labelled]).mean() > 0.9

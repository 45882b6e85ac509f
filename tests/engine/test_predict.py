"""The engine end to end on a real local cluster: seams, invariance, nodata, COG, resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import rasterio
import torch
from rio_cogeo.cogeo import cog_validate

from geoseg.core.grid import Window
from geoseg.engine.predict import predict
from geoseg.errors import GeoSegError
from geoseg.io.scene import Scene
from geoseg.model.factory import load_model
from geoseg.model.runner import normalize


def read(path):
    with rasterio.open(path) as s:
        return s.read(1)


def whole_image_prediction(scene, bundle):
    """The reference: the model run once on the whole scene, no tiles."""
    model, meta = load_model(bundle)
    sc = Scene.of(scene)
    data, valid = sc.read(Window(0, 0, sc.info.height, sc.info.width), meta.bands)
    normalize(data, valid, meta)
    with torch.inference_mode():
        probs = torch.softmax(model(torch.from_numpy(data)[None]), 1)[0].numpy()
    ids = np.array([c.id for c in meta.classes], dtype=np.uint8)
    cls = ids[probs.argmax(0)]
    cls[~valid] = meta.class_list.nodata
    return cls, probs, valid


def test_tiled_equals_whole_image_for_a_per_pixel_model(client, synth, bundles, tmp_path):
    scene, _ = synth(700, 1000, seed=1, nodata_fraction=0.05)
    bundle = bundles("pixelnet", tile=128, overlap=32)
    res = predict(
        scene,
        bundle,
        tmp_path / "out.tif",
        block=300,
        client=client,
        probabilities=True,
        precision="fp32",  # the reference is torch in fp32
        runtime="torch",
    )
    ref_cls, ref_probs, valid = whole_image_prediction(scene, bundle)
    got = read(res.path)
    top2 = np.sort(ref_probs, axis=0)[-2:]
    clear = (top2[1] - top2[0]) > 1e-5  # ignore exact near-ties of the reference
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(got[clear], ref_cls[clear])
    with rasterio.open(res.outputs["probs"]) as s:
        p = s.read().astype(np.float64) / 254
    err = np.abs(p[:, valid] - ref_probs[:, valid])
    assert err.max() <= 0.5 / 254 + 1e-6  # only the uint8 rounding, no seams
    assert res.blocks == 12 and res.tiles > res.blocks


def test_bit_identical_whatever_block_size_and_workers(client, synth, bundles, tmp_path):
    from geoseg.cluster.setup import ClusterOptions, connect

    scene, _ = synth(517, 643, seed=2)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    outs = [
        predict(scene, bundle, tmp_path / f"b{b}.tif", block=b, client=client).path
        for b in (96, 300, 5000)
    ]
    with connect(ClusterOptions(workers=1)) as one:
        outs.append(predict(scene, bundle, tmp_path / "w1.tif", block=300, client=one).path)
    first = read(outs[0])
    assert len(np.unique(first)) > 1
    for o in outs[1:]:
        np.testing.assert_array_equal(read(o), first)


def test_nodata_pixels_and_all_nodata_tiles(client, synth, bundles, tmp_path):
    scene, labels = synth(600, 800, seed=3, nodata_fraction=0.35, patch=60)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    res = predict(scene, bundle, tmp_path / "out.tif", block=256, client=client)
    out = read(res.path)
    lab = read(labels)
    with rasterio.open(res.path) as s:
        assert s.nodata == 0
    np.testing.assert_array_equal(out == 0, lab == 0)
    assert res.tiles_skipped > 0  # tiles entirely in nodata never reached the model


@pytest.mark.parametrize("h,w", [(50, 70), (1, 1), (129, 33), (301, 517)])
def test_tiny_and_odd_scenes(client, synth, bundles, tmp_path, h, w):
    scene, _ = synth(h, w, seed=4)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    res = predict(
        scene, bundle, tmp_path / "out.tif", client=client, precision="fp32", runtime="torch"
    )
    ref_cls, _, _ = whole_image_prediction(scene, bundle)
    out = read(res.path)
    assert out.shape == (h, w)
    assert (out == ref_cls).mean() > 0.999


def test_cog_is_valid_with_palette_names_and_style(client, synth, bundles, tmp_path):
    scene, _ = synth(1300, 1100, seed=5)
    bundle = bundles("pixelnet", tile=128, overlap=32)
    out = tmp_path / "map.tif"
    predict(scene, bundle, out, client=client)
    ok, errors, _ = cog_validate(str(out))
    assert ok, errors
    with rasterio.open(out) as s, rasterio.open(scene) as src:
        assert s.crs == src.crs and s.transform == src.transform
        assert s.dtypes[0] == "uint8" and s.nodata == 0
        assert s.block_shapes[0] == (512, 512)
        assert s.overviews(1)  # internal overviews
        assert s.compression.name.lower() == "deflate"
        cmap = s.colormap(1)
        assert cmap[1][:3] != cmap[2][:3]
        assert "class1" in s.tags(1)["CLASSES"]
    cats = [c.text or "" for c in ET.parse(f"{out}.aux.xml").iter("Category")]
    assert cats[:3] == ["nodata", "class1", "class2"]
    qml = ET.parse(out.with_suffix(".qml"))
    assert {e.get("label") for e in qml.iter("paletteEntry")} == {f"class{i}" for i in range(1, 6)}
    assert not list(tmp_path.glob(".*"))  # no staging or partial files left


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdalinfo (gdal-bin) absent")
def test_category_names_and_palette_read_by_gdal(client, synth, bundles, tmp_path):
    """GDAL itself (the command-line tools QGIS users have) sees class names and colours."""
    scene, _ = synth(200, 200, seed=5)
    out = tmp_path / "m.tif"
    predict(scene, bundles("pixelnet", tile=64, overlap=16), out, client=client)
    info = json.loads(
        subprocess.run(
            ["gdalinfo", "-json", str(out)], check=True, capture_output=True, text=True
        ).stdout
    )
    band = info["bands"][0]
    assert band["categories"][1:6] == [f"class{i}" for i in range(1, 6)]
    assert band["colorInterpretation"] == "Palette"
    assert band["noDataValue"] == 0


def test_stacked_band_files_equal_multiband(client, synth, bundles, tmp_path):
    scene, _ = synth(300, 400, seed=6)
    with rasterio.open(scene) as src:
        prof = src.profile | {"count": 1}
        files = []
        for b in range(1, src.count + 1):
            f = tmp_path / f"band{b}.tif"
            with rasterio.open(f, "w", **prof) as dst:
                dst.write(src.read(b), 1)
            files.append(str(f))
    bundle = bundles("pixelnet", tile=64, overlap=16)
    a = predict(scene, bundle, tmp_path / "a.tif", client=client).path
    b = predict(files, bundle, tmp_path / "b.tif", client=client).path
    np.testing.assert_array_equal(read(a), read(b))


def test_input_without_crs_keeps_pixel_coordinates(client, bundles, tmp_path):
    rng = np.random.default_rng(0)
    png = tmp_path / "photo.png"
    img = rng.integers(0, 255, size=(3, 150, 210), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            png, "w", driver="PNG", width=210, height=150, count=3, dtype="uint8"
        ) as d:
            d.write(img)
    bundle = bundles("pixelnet", bands=3, tile=64, overlap=16, mean=128.0, std=64.0)
    with pytest.warns(UserWarning, match="no CRS"):
        res = predict(png, bundle, tmp_path / "out.tif", client=client)
    with rasterio.open(res.path) as s:
        assert s.crs is None and s.shape == (150, 210)


def test_resume_reuses_staged_blocks_and_gives_identical_output(client, synth, bundles, tmp_path):
    scene, _ = synth(600, 600, seed=7)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    staging = tmp_path / "staging"
    first = predict(
        scene,
        bundle,
        tmp_path / "a.tif",
        block=150,
        client=client,
        staging=str(staging),
        keep_staging=True,
    )
    staged = sorted(Path(first.staging).glob("b*.npz"))
    assert len(staged) == first.blocks and first.blocks_reused == 0
    for f in staged[::3]:  # as if the job had died before these blocks finished
        f.unlink()
    second = predict(
        scene,
        bundle,
        tmp_path / "b.tif",
        block=150,
        client=client,
        staging=str(staging),
        keep_staging=False,
    )
    assert second.blocks_reused == len(staged) - len(staged[::3])
    np.testing.assert_array_equal(read(first.path), read(second.path))
    assert not Path(second.staging).exists()
    # a different parameter is a different job: nothing is reused
    third = predict(
        scene, bundle, tmp_path / "c.tif", block=150, overlap=8, client=client, staging=str(staging)
    )
    assert third.blocks_reused == 0


def test_band_mismatch_and_existing_output_are_clear_errors(client, synth, bundles, tmp_path):
    scene, _ = synth(100, 100, seed=8)
    with pytest.raises(GeoSegError, match="has 4 band"):
        predict(scene, bundles("pixelnet", bands=6), tmp_path / "x.tif", client=client)
    out = tmp_path / "y.tif"
    out.write_bytes(b"old")
    with pytest.raises(GeoSegError, match="--overwrite"):
        predict(scene, bundles("pixelnet"), out, client=client)
    assert out.read_bytes() == b"old"
    assert not (tmp_path / "x.tif").exists()


def test_real_nc_landsat_band_files(client, bundles, tmp_path):
    """The bundled NC Landsat 7 sample: six float32 band files with nodata -99999."""
    nc = Path(__file__).resolve().parents[2] / "examples" / "data" / "nc"
    bands = [str(nc / f"lsat7_2000_{b}.tif") for b in (10, 20, 30, 40, 50, 70)]
    bundle = bundles("pixelnet", bands=6, tile=128, overlap=32, mean=60.0, std=30.0)
    res = predict(bands, bundle, tmp_path / "nc.tif", block=200, client=client)
    out = read(res.path)
    with rasterio.open(bands[0]) as s:
        invalid = ~s.read_masks(1).astype(bool)
        for b in bands[1:]:
            with rasterio.open(b) as t:
                invalid |= ~t.read_masks(1).astype(bool)
        crs = s.crs
    assert out.shape == (443, 489)
    np.testing.assert_array_equal(out == 0, invalid)
    with rasterio.open(res.path) as s:
        assert s.crs == crs and s.res == (28.5, 28.5)


@pytest.mark.parametrize("kind", ["alpha", "nan", "nodata_value"])
def test_nodata_from_alpha_nan_and_value(client, bundles, tmp_path, kind):
    rng = np.random.default_rng(1)
    h, w = 200, 260
    hole = np.zeros((h, w), dtype=bool)
    hole[50:120, 30:200] = True
    prof = dict(
        driver="GTiff",
        height=h,
        width=w,
        crs="EPSG:32633",
        transform=rasterio.transform.from_origin(0, 0, 1, 1),
    )
    path = tmp_path / f"{kind}.tif"
    if kind == "alpha":
        img = rng.integers(1, 255, size=(4, h, w), dtype=np.uint8)
        img[3] = np.where(hole, 0, 255)
        with rasterio.open(
            path, "w", count=4, dtype="uint8", photometric="RGB", alpha="YES", **prof
        ) as d:
            d.write(img)
    else:
        img = rng.normal(100, 20, size=(3, h, w)).astype(np.float32)
        img[1, hole] = np.nan if kind == "nan" else -9999.0
        nodata = None if kind == "nan" else -9999.0
        with rasterio.open(path, "w", count=3, dtype="float32", nodata=nodata, **prof) as d:
            d.write(img)
    bundle = bundles("pixelnet", bands=3, tile=64, overlap=16, mean=100.0, std=20.0)
    out = read(predict(path, bundle, tmp_path / "out.tif", client=client).path)
    np.testing.assert_array_equal(out == 0, hole)

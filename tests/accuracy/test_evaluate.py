"""geoseg.accuracy.evaluate and geoseg.accuracy.sample on real files and a real local cluster."""

from __future__ import annotations

import json
import sqlite3

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.transform import array_bounds
from rasterio.warp import Resampling, calculate_default_transform, reproject
from typer.testing import CliRunner

from geoseg.accuracy.evaluate import evaluate, parse_class_map
from geoseg.accuracy.sample import sample
from geoseg.cli.main import app
from geoseg.core import metrics as mx
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.cog import CogWriter, RasterSpec

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
H, W = 150, 190


def _idx(a: np.ndarray) -> np.ndarray:
    """Class ids 1..5 -> indices 0..4, anything else -> -1."""
    return np.where((a >= 1) & (a <= 5), a.astype(np.int64) - 1, -1)


def _write(path, arr, src_profile, **kw):
    prof = dict(
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype=arr.dtype,
        crs=src_profile["crs"],
        transform=src_profile["transform"],
    )
    prof.update(kw)
    with rasterio.open(path, "w", **prof) as d:
        d.write(arr, 1)
    return path


@pytest.fixture(scope="module")
def maps(synth, tmp_path_factory):
    """A geoseg class COG (CLASSES tag, nodata 0 holes) and a perturbed reference raster on
    the same grid (15 % relabelled, a strip unlabelled (0), a patch nodata (255))."""
    root = tmp_path_factory.mktemp("eval")
    _, labels = synth(H, W, patch=40, seed=4, nodata_fraction=0.08)
    with rasterio.open(labels) as s:
        lab, prof = s.read(1), s.profile
    writer = CogWriter(
        RasterSpec(
            H, W, 1, prof["crs"], prof["transform"], nodata=0, classes=load_classes(CLASSES5)
        ),
        root / "scratch",
    )
    writer.write(Window(0, 0, H, W), lab)
    cog = writer.finish(root / "map.tif")
    rng = np.random.default_rng(5)
    ref = np.where(rng.random(lab.shape) < 0.15, rng.integers(1, 6, lab.shape), lab)
    ref = np.where(lab == 0, rng.integers(1, 6, lab.shape), ref).astype(np.uint8)
    ref[:, :12] = 0
    ref[100:120, 150:] = 255
    refp = _write(root / "ref.tif", ref, prof, nodata=255)
    return {
        "map": cog,
        "ref": refp,
        "labels": labels,
        "lab": lab,
        "refarr": ref,
        "profile": prof,
        "root": root,
    }


def test_raster_reference_blockwise_equals_whole_map(client, maps, tmp_path):
    lab, ref = maps["lab"], maps["refarr"]
    expect = mx.confusion_matrix(_idx(lab), _idx(ref), 5)
    rep = evaluate(maps["map"], maps["ref"], tmp_path / "a", client=client, block=64)
    assert rep["run"]["blocks"] == 9  # 3 x 3 windows of (up to) 64 px
    np.testing.assert_array_equal(rep["confusion_matrix"]["counts"], expect)
    assert rep["matrix_orientation"] == "rows = map classes, columns = reference classes"
    assert rep["overall"]["overall_accuracy"] == pytest.approx(np.trace(expect) / expect.sum())
    o = rep["overall"]
    assert o["quantity_disagreement"] + o["allocation_disagreement"] == pytest.approx(
        1 - o["overall_accuracy"]
    )
    valid_ref = (ref >= 1) & (ref <= 5)
    assert rep["excluded"] == {
        "map_nodata": int(((lab == 0) & valid_ref).sum()),
        "reference_missing": int(((lab > 0) & ~valid_ref).sum()),
    }
    pc = rep["per_class"]
    assert [c["mapped_pixels"] for c in pc] == [int((lab == k).sum()) for k in range(1, 6)]
    assert pc[0]["mapped_area_ha"] == pytest.approx((lab == 1).sum() * 0.01)  # 10 m pixels
    assert pc[2]["users_accuracy"] == pytest.approx(expect[2, 2] / expect[2].sum())
    assert pc[2]["producers_accuracy"] == pytest.approx(expect[2, 2] / expect[:, 2].sum())
    assert rep["stratified"] is None and "census" in " ".join(rep["notes"])
    # the files, complete
    out = tmp_path / "a"
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["confusion_matrix"]["counts"] == expect.tolist()
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_matrix.csv",
        "confusion_matrix.png",
        "per_class.csv",
        "per_class.png",
        "report.json",
    ]
    rows = (out / "confusion_matrix.csv").read_text().splitlines()
    assert rows[0].startswith("map \\ reference,class1")
    assert rows[1].split(",")[1:6] == [str(v) for v in expect[0]]
    assert (out / "per_class.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # another block size: the same matrix; the existing report is not overwritten silently
    with pytest.raises(GeoSegError, match="--overwrite"):
        evaluate(maps["map"], maps["ref"], out, client=client, block=96)
    rep2 = evaluate(maps["map"], maps["ref"], out, client=client, block=96, overwrite=True)
    assert rep2["confusion_matrix"] == rep["confusion_matrix"] and rep2["run"]["blocks"] == 4


def test_reference_in_another_crs_is_reprojected_per_block(client, maps, tmp_path):
    """The reference covers the top 100 rows, in UTM 13N instead of 12N."""
    prof, ref = maps["profile"], maps["refarr"][:100].copy()
    ref[ref == 255] = 0
    crs, t = prof["crs"], prof["transform"]
    dst = "EPSG:32613"
    dt, dw, dh = calculate_default_transform(crs, dst, W, 100, *array_bounds(100, W, t))
    warped = np.zeros((dh, dw), np.uint8)
    reproject(
        ref,
        warped,
        src_transform=t,
        src_crs=crs,
        dst_transform=dt,
        dst_crs=dst,
        resampling=Resampling.nearest,
        src_nodata=0,
        dst_nodata=0,
    )
    path = _write(tmp_path / "ref13.tif", warped, {"crs": dst, "transform": dt}, nodata=0)
    back = np.zeros((H, W), np.uint8)  # the reference on the map grid, whole array at once
    reproject(
        warped,
        back,
        src_transform=dt,
        src_crs=dst,
        dst_transform=t,
        dst_crs=crs,
        resampling=Resampling.nearest,
        src_nodata=0,
        dst_nodata=0,
    )
    rep = evaluate(maps["map"], path, tmp_path / "b", client=client, block=64)
    expect = mx.confusion_matrix(_idx(maps["lab"]), _idx(back), 5)
    np.testing.assert_array_equal(rep["confusion_matrix"]["counts"], expect)
    assert "reprojected block by block" in rep["notes"][0] and "EPSG:32613" in rep["notes"][0]
    assert rep["compared"] < ((maps["lab"] > 0).sum() * 0.7)  # pixels outside left out
    assert rep["overall"]["overall_accuracy"] > 0.7


def test_polygon_reference(client, maps, tmp_path):
    t = maps["profile"]["transform"]
    x0, y0 = t.c, t.f
    boxes = [
        shapely.box(x0 + 100, y0 - 600, x0 + 700, y0 - 100),
        shapely.box(x0 + 500, y0 - 1400, x0 + 1800, y0 - 900),
        shapely.box(x0 + 300, y0 - 500, x0 + 900, y0 - 300),  # overlaps the first
        shapely.box(x0 + 1500, y0 - 400, x0 + 2500, y0 + 300),
    ]  # partly outside
    gdf = gpd.GeoDataFrame(
        {"label": ["class2", "CLASS4", "class1", "class5"]},
        geometry=boxes,
        crs=maps["profile"]["crs"],
    )
    path = tmp_path / "poly.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="truth", driver="GPKG")
    burnt = rasterize(
        zip(boxes, [2, 4, 1, 5], strict=True), out_shape=(H, W), transform=t, fill=0, dtype="uint8"
    )
    rep = evaluate(maps["map"], path, tmp_path / "p", client=client, block=64, field="label")
    np.testing.assert_array_equal(
        rep["confusion_matrix"]["counts"], mx.confusion_matrix(_idx(maps["lab"]), _idx(burnt), 5)
    )
    assert rep["reference"]["kind"] == "polygons" and rep["compared"] > 1000


def test_point_reference_in_another_crs(client, maps, tmp_path):
    lab, t = maps["lab"], maps["profile"]["transform"]
    rng = np.random.default_rng(8)
    rows, cols = rng.integers(-5, H + 5, 300), rng.integers(-5, W + 5, 300)
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    truth = rng.integers(1, 6, 300).astype(float)
    truth[:20] = np.nan  # unlabelled
    xs, ys = t * (cols + 0.5, rows + 0.5)
    gdf = gpd.GeoDataFrame(
        {"class": truth}, geometry=shapely.points(xs, ys), crs=maps["profile"]["crs"]
    ).to_crs("EPSG:4326")
    path = tmp_path / "pts.gpkg"
    pyogrio.write_dataframe(gdf, path, driver="GPKG")
    rep = evaluate(maps["map"], path, tmp_path / "q", client=client, block=64)
    labelled = ~np.isnan(truth)
    m = np.full(300, -1)
    m[inside] = _idx(lab[rows[inside], cols[inside]])
    use = labelled & inside & (m >= 0)
    expect = mx.confusion_matrix(m[use], truth[use].astype(int) - 1, 5)
    np.testing.assert_array_equal(rep["confusion_matrix"]["counts"], expect)
    assert rep["unit"] == "points" and rep["reference"]["field"] == "class"
    assert rep["excluded"] == {
        "unlabelled": 20,
        "outside_map": int((labelled & ~inside).sum()),
        "map_nodata": int((labelled & inside & (m < 0)).sum()),
    }
    assert any("reprojected from EPSG:4326" in n for n in rep["notes"])
    assert rep["stratified"] is None  # not a stratified sample unless asked
    post = evaluate(maps["map"], path, tmp_path / "r", client=client, design="stratified")
    est = mx.stratified_estimates(expect, [(lab == k).sum() for k in range(1, 6)])
    assert post["stratified"]["overall_accuracy"]["estimate"] == pytest.approx(est.oa)


def test_unknown_reference_ids_are_a_one_line_error(client, maps, tmp_path):
    ref = maps["refarr"].copy()
    ref[5:9, 20:30] = 9
    ref[40, 40] = 17
    path = _write(tmp_path / "bad.tif", ref, maps["profile"], nodata=255)
    with pytest.raises(GeoSegError) as e:
        evaluate(maps["map"], path, tmp_path / "x", client=client, block=64)
    msg = str(e.value)
    assert "\n" not in msg and "[9, 17]" in msg and "class_map={ref_id: map_id}" in msg
    assert not (tmp_path / "x" / "report.json").exists()
    rep = evaluate(
        maps["map"], path, tmp_path / "y", client=client, block=64, class_map={9: 2, 17: 0}
    )
    fixed = np.where(ref == 9, 2, np.where(ref == 17, 0, ref))
    np.testing.assert_array_equal(
        rep["confusion_matrix"]["counts"], mx.confusion_matrix(_idx(maps["lab"]), _idx(fixed), 5)
    )
    assert rep["reference"]["class_map"] == {"9": 2, "17": 0}
    pts = gpd.GeoDataFrame(
        {"ref_class": [1, 42]},
        geometry=shapely.points(
            [maps["profile"]["transform"].c + 5] * 2, [maps["profile"]["transform"].f - 5] * 2
        ),
        crs=maps["profile"]["crs"],
    )
    pyogrio.write_dataframe(pts, tmp_path / "p.gpkg", driver="GPKG")
    with pytest.raises(GeoSegError, match=r"ids \[42\].*class_map"):
        evaluate(maps["map"], tmp_path / "p.gpkg", tmp_path / "z", client=client)
    with pytest.raises(GeoSegError, match="not REF=MAP"):
        parse_class_map(["9:2"])


def test_sample_then_stratified_evaluation(client, maps, tmp_path):
    lab, t = maps["lab"], maps["profile"]["transform"]
    pixels = np.array([(lab == k).sum() for k in range(1, 6)])
    out = tmp_path / "s.gpkg"
    res = sample(maps["map"], out, n=90, min_per_class=12, seed=3, client=client, block=64)
    again = sample(
        maps["map"], tmp_path / "s2.gpkg", n=90, min_per_class=12, seed=3, client=client, block=64
    )
    assert res.n == 90 and list(res.allocation.values()) == mx.allocate(90, pixels, 12).tolist()
    assert again.allocation == res.allocation and again.stratum_pixels == res.stratum_pixels
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10300  # GeoPackage 1.3
        # the points' QGIS style: circles of the map class colours, by map_class
        table, qml, default = db.execute(
            "SELECT f_table_name, styleQML, useAsDefault FROM layer_styles"
        ).fetchone()
    assert table == "points" and default == 1
    assert 'attr="map_class"' in qml and qml.count('class="SimpleMarker"') == 5
    pts = pyogrio.read_dataframe(out, layer="points")
    assert pts.geometry.equals(
        pyogrio.read_dataframe(tmp_path / "s2.gpkg", layer="points").geometry
    )
    assert {"point_id", "map_class", "map_name", "ref_class", "stratum_px"} <= set(pts.columns)
    assert pts["ref_class"].isna().all() and pts["point_id"].is_unique
    cols, rows = ~t * (pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    rows, cols = rows.astype(int), cols.astype(int)
    assert len({(r, c) for r, c in zip(rows, cols, strict=True)}) == 90  # no pixel twice
    np.testing.assert_array_equal(lab[rows, cols], pts["map_class"])  # pixel centres
    np.testing.assert_array_equal(pts["stratum_px"], pixels[pts["map_class"] - 1])
    assert pts.groupby("map_class").size().tolist() == list(res.allocation.values())
    # the analyst labels the points (two stay unlabelled) and saves them on their own
    truth = maps["refarr"][rows, cols].astype(float)
    truth[(truth == 0) | (truth == 255)] = np.nan
    truth[:2] = np.nan
    pts["ref_class"] = pd.array(np.where(np.isnan(truth), None, truth), dtype="Int32")
    labelled = tmp_path / "labelled.gpkg"
    pyogrio.write_dataframe(pts, labelled, driver="GPKG")
    ok = ~np.isnan(truth)
    counts = mx.confusion_matrix(lab[rows, cols][ok] - 1, truth[ok].astype(int) - 1, 5)
    est = mx.stratified_estimates(counts, pixels)
    for src in (labelled, out):
        if src == out:  # the original file, with its strata table, labelled in place
            pyogrio.write_dataframe(pts, out, layer="points", driver="GPKG")
        rep = evaluate(maps["map"], src, tmp_path / f"e_{src.stem}", client=client, block=64)
        s = rep["stratified"]
        assert s is not None and "geoseg sample" in s["design"]
        np.testing.assert_array_equal(rep["confusion_matrix"]["counts"], counts)
        assert s["overall_accuracy"]["estimate"] == pytest.approx(est.oa)
        assert s["overall_accuracy"]["ci95"] == pytest.approx(1.96 * est.oa_se)
        area = [c["area_ha"]["estimate"] for c in s["per_class"]]
        assert area == pytest.approx((est.area_proportion * pixels.sum() * 0.01).tolist())
        assert sum(area) == pytest.approx(pixels.sum() * 0.01)
        assert np.asarray(s["area_proportions"]["values"]) == pytest.approx(est.p)
        assert (tmp_path / f"e_{src.stem}" / "area_proportions.csv").exists()


def test_cli_sample_and_evaluate_end_to_end(client, maps, tmp_path):
    """The raw synthetic labels (no CLASSES tag) as the map, with a classes.json."""
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(CLASSES5))
    addr = ["--scheduler", client.scheduler.address, "--block", "64"]
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "sample",
            str(maps["labels"]),
            "--points",
            "60",
            "--min-per-class",
            "8",
            "--out",
            str(tmp_path / "pts.gpkg"),
            "--classes",
            str(classes),
            *addr,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "60 points" in " ".join(r.output.split()) and (tmp_path / "pts.gpkg").exists()
    r = runner.invoke(
        app,
        [
            "evaluate",
            str(maps["labels"]),
            "--reference",
            str(maps["ref"]),
            "--out",
            str(tmp_path / "rep"),
            "--classes",
            str(classes),
            *addr,
        ],
    )
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    text = " ".join(r.output.split())  # rich wraps lines
    assert f"overall accuracy {rep['overall']['overall_accuracy']:.3f}" in text
    expect = mx.confusion_matrix(_idx(maps["lab"]), _idx(maps["refarr"]), 5)
    assert rep["confusion_matrix"]["counts"] == expect.tolist()
    r = runner.invoke(
        app,
        ["evaluate", str(maps["labels"]), str(maps["ref"]), "--out", str(tmp_path / "rep2"), *addr],
    )  # the old spelling (reference as a second argument); no CLASSES tag, no --classes
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--classes" in lines[0]
    r = runner.invoke(
        app,
        ["evaluate", str(maps["labels"]), str(maps["ref"]), "--reference", str(maps["ref"])]
        + ["--out", str(tmp_path / "rep3"), *addr],
    )
    assert r.exit_code == 2 and "give only --reference" in r.output
    r = runner.invoke(app, ["evaluate", str(maps["labels"]), "--out", str(tmp_path / "rep4")])
    assert r.exit_code == 2 and "missing --reference" in r.output
    assert not (tmp_path / "rep3").exists() and not (tmp_path / "rep4").exists()


def test_real_nc_landclass_vs_landsat_points(client, data_dir, tmp_path):
    """landclass96 (float32, nodata -99999, no CLASSES tag) against the 1000 labelled points
    (field ``id``; some fall outside the raster)."""
    nc = data_dir / "nc"
    names = ["developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"]
    classes = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    rep = evaluate(
        nc / "strata.tif",
        nc / "landsat96_points.shp",
        tmp_path / "nc",
        client=client,
        classes=classes,
        field="id",
        block=256,
    )
    assert 0 < rep["overall"]["overall_accuracy"] <= 1
    assert rep["compared"] + sum(rep["excluded"].values()) == 1000
    assert rep["excluded"]["outside_map"] > 0

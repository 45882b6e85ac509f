"""geoseg.change.change on real files and a real local cluster: synthetic pairs with planted
changes."""

from __future__ import annotations

import colorsys
import json
import xml.etree.ElementTree as ET

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import Resampling, calculate_default_transform, reproject
from typer.testing import CliRunner

from geoseg.change.change import change
from geoseg.cli.main import app
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.core.transitions import components
from geoseg.errors import GeoSegError
from geoseg.io.cog import CogWriter, RasterSpec

CLASSES = [
    {"id": 1, "name": "Water"},
    {"id": 2, "name": "Forest"},
    {"id": 3, "name": "Grass"},
    {"id": 4, "name": "Built"},
]
H, W = 100, 140
CRS = "EPSG:32612"
TRANSFORM = from_origin(500000.0, 4200000.0, 10.0, 10.0)  # 10 m: a pixel is 0.01 ha
R1 = (slice(10, 30), slice(20, 50))  # Water -> Built, confident
R2 = (slice(60, 80), slice(90, 120))  # Built -> Forest, later date unsure (p = 0.55)
R3 = (slice(40, 42), slice(100, 102))  # Forest -> Grass, 4 px = 0.04 ha, confident
HI, LO = 230, 140  # winning-class probability * 254


def write_date(root, name, classes, conf, crs=CRS, transform=TRANSFORM, probs=True):
    """A geoseg class COG (nodata 0) and its _probabilities.tif sibling (uint8 / 254)."""
    h, w = classes.shape
    cl = load_classes(CLASSES)
    base = dict(height=h, width=w, crs=crs, transform=transform)
    wr = CogWriter(RasterSpec(count=1, nodata=0, classes=cl, **base), root / "scratch")
    wr.write(Window(0, 0, h, w), classes.astype(np.uint8))
    path = wr.finish(root / f"{name}.tif")
    if probs:
        p = np.where(np.arange(1, 5)[:, None, None] == classes, conf, (254 - conf) // 3).astype(
            np.uint8
        )
        p[:, classes == 0] = 255
        wr = CogWriter(
            RasterSpec(count=4, nodata=255, scales=[1 / 254] * 4, **base), root / "scratch"
        )
        wr.write(Window(0, 0, h, w), p)
        wr.finish(root / f"{name}_probabilities.tif")
    return path


def planted():
    rows, cols = np.mgrid[0:H, 0:W]
    before = (1 + (rows >= 50) * 2 + (cols >= 70)).astype(np.uint8)  # 1 2 / 3 4 quadrants
    after = before.copy()
    after[R1], after[R2], after[R3] = 4, 2, 3
    conf_after = np.full((H, W), HI)
    conf_after[R2] = LO
    before[0:5, :] = 0  # nodata on the earlier date
    after[90:100, 0:30] = 0  # and on the later one
    return before, after, conf_after


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("change")
    before, after, conf_after = planted()
    b = write_date(root, "lc_2009-08-18", before, np.full((H, W), HI))
    a = write_date(root, "lc_2020-08-31", after, conf_after)
    return {"root": root, "before": b, "after": a, "b": before, "a": after}


@pytest.fixture(scope="module")
def run(pair, client, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    res = change(pair["before"], pair["after"], out, client=client, block=64)
    return res, out


def read(path):
    with rasterio.open(path) as src:
        info = {
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "tags": src.tags(),
            "colormap": src.colormap(1) if src.dtypes[0] == "uint8" else None,
        }
        return src.read(1), info


def test_fromto_mask_counts_and_areas_are_exact(pair, run):
    res, out = run
    b, a = pair["b"], pair["a"]
    valid = (b > 0) & (a > 0)
    codes, src = read(out / "change_fromto.tif")
    assert src["dtype"] == "uint16" and src["nodata"] == 65535
    np.testing.assert_array_equal(codes, np.where(valid, b.astype(np.uint16) * 100 + a, 65535))
    status, msrc = read(out / "change_mask.tif")
    expect = np.where(valid, 1, 0)
    expect[R1], expect[R3], expect[R2] = 2, 2, 3
    np.testing.assert_array_equal(status, expect)
    assert msrc["colormap"][2][:3] == (0xE3, 0x1A, 0x1C)
    px = res.report["pixels"]
    assert (px["changed"], px["uncertain"]) == (600 + 4, 600)
    assert px["compared"] == valid.sum() and px["unchanged"] == valid.sum() - 1204
    assert px["nodata_before_only"] == 5 * W - 0 and px["nodata_after_only"] == 10 * 30
    assert res.changed_ha == pytest.approx(6.04) and res.uncertain_ha == pytest.approx(6.0)
    m = np.zeros((4, 4), np.int64)
    np.add.at(m, (b[valid] - 1, a[valid] - 1), 1)
    np.testing.assert_array_equal(res.report["transitions"]["matrix_pixels"], m)
    np.testing.assert_allclose(res.matrix_ha, m * 0.01)
    assert res.report["transitions"]["uncertain_pixels"][3][1] == 600  # Built -> Forest
    assert res.report["grid"]["height"] == H and "same CRS" in res.report["before"]["read"]
    sens = {s["threshold"]: s["changed_ha"] for s in res.report["gate"]["sensitivity"]}
    assert sens[0.7] == pytest.approx(6.04) and sens[0.5] == pytest.approx(12.04)
    assert res.report["before"]["date"] == "2009-08-18"
    assert res.report["after"]["date"] == "2020-08-31"


def _hls(color: str) -> tuple[float, float, float]:
    return colorsys.rgb_to_hls(*(int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)))


def test_legend_sidecars_and_tags(run):
    res, out = run
    cats = [c.text for c in ET.parse(out / "change_fromto.tif.aux.xml").iter("Category")]
    assert cats[104] == "Water -> Built" and cats[202] == "Forest (no change)"
    pal = {
        e.get("value"): (e.get("label"), e.get("color"))
        for e in ET.parse(out / "change_fromto.qml").iter("paletteEntry")
    }
    assert pal["402"][0] == "Built -> Forest" and len(pal) == 16
    # every code its own colour; the changes into a class are shades of that class's hue
    assert len({c for _, c in pal.values()}) == 16
    hue = {int(k): _hls(c)[0] for k, (_, c) in pal.items()}
    forest = hue[202]  # its persistence: a pale tint of the class colour, the same hue
    assert all(abs(hue[f * 100 + 2] - forest) < 0.02 for f in (1, 3, 4))
    # ... and the COG carries the same colours as a palette for clients without the .qml
    with rasterio.open(out / "change_fromto.tif") as src:
        cmap = src.colormap(1)
    for k, (_, c) in pal.items():
        assert "#{:02x}{:02x}{:02x}".format(*cmap[int(k)][:3]) == c.lower()
    for name, n in (("change_fromto", 16), ("change_mask", 3)):  # STAC Items beside them
        item = json.loads((out / f"{name}.stac.json").read_text())
        classes = item["assets"]["data"]["classification:classes"]
        assert len([c for c in classes if not c.get("nodata")]) == n
        assert item["properties"]["geoseg:date_to"] == "2020-08-31"
    _, info = read(out / "change_fromto.tif")
    assert info["tags"]["GEOSEG_CHANGE_CODE"] == "from_id * 100 + to_id"
    assert info["tags"]["GEOSEG_DATE_TO"] == "2020-08-31"
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["files"]) >= {
        "fromto",
        "mask",
        "polygons",
        "transitions_csv",
        "class_changes_csv",
        "transitions_png",
        "report_json",
    }
    assert (out / "transitions.png").read_bytes()[:4] == b"\x89PNG"
    csv = (out / "transitions.csv").read_text().splitlines()
    assert csv[0].startswith("from \\ to (ha),Water,Forest,Grass,Built")


def test_transition_table_identities(pair, run):
    res, out = run
    b, a = pair["b"], pair["a"]
    valid = (b > 0) & (a > 0)
    m = res.matrix_ha
    before_ha = np.bincount(b[valid], minlength=5)[1:] * 0.01
    after_ha = np.bincount(a[valid], minlength=5)[1:] * 0.01
    np.testing.assert_allclose(m.sum(axis=1), before_ha)
    np.testing.assert_allclose(m.sum(axis=0), after_ha)
    for per in (
        res.report["components"]["all"]["per_class"],
        res.report["components"]["confident"]["per_class"],
    ):
        net = np.array([p["net_ha"] for p in per])
        gain, loss = np.array([p["gain_ha"] for p in per]), np.array([p["loss_ha"] for p in per])
        np.testing.assert_allclose(net, gain - loss)
        assert net.sum() == pytest.approx(0, abs=1e-9)
        np.testing.assert_allclose([p["swap_ha"] for p in per], 2 * np.minimum(gain, loss))
    water, built = (
        res.report["components"]["all"]["per_class"][0],
        res.report["components"]["all"]["per_class"][3],
    )
    assert water["loss_ha"] == pytest.approx(6.0) and water["gain_ha"] == 0
    assert built["gain_ha"] == pytest.approx(6.0) and built["loss_ha"] == pytest.approx(6.0)
    assert built["swap_ha"] == pytest.approx(12.0) and built["net_ha"] == pytest.approx(0)
    conf_built = res.report["components"]["confident"]["per_class"][3]
    assert conf_built["loss_ha"] == 0 and conf_built["net_ha"] == pytest.approx(6.0)
    rows = (run[1] / "class_changes.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["id", "name", "before_ha", "after_ha"]


def test_components_by_hand():
    t = np.array([[10, 2, 0], [3, 20, 1], [0, 0, 5]])
    c = components(t)
    np.testing.assert_array_equal(c.gain, [3, 2, 1])
    np.testing.assert_array_equal(c.loss, [2, 4, 0])
    np.testing.assert_array_equal(c.swap, [4, 4, 0])
    land = c.landscape()
    assert land["total_change"] == 6 and land["net_change"] + land["swap"] == 6


def test_gate_threshold_and_missing_probabilities(pair, client, tmp_path):
    res = change(
        pair["before"], pair["after"], tmp_path / "t5", client=client, threshold=0.5, block=64
    )
    assert res.report["pixels"]["changed"] == 1204 and res.report["pixels"]["uncertain"] == 0
    b = write_date(tmp_path, "b_2001-01-01", pair["b"], None, probs=False)
    a = write_date(tmp_path, "a_2002-01-01", pair["a"], None, probs=False)
    with pytest.warns(UserWarning, match="confidence gate is not applied"):
        res = change(b, a, tmp_path / "np", client=client, block=64)
    assert res.report["gate"]["applied"] is False and res.report["pixels"]["changed"] == 1204


def test_polygons_carry_fields_and_mmu(run, pair, client, tmp_path):
    res, out = run
    gdf = pyogrio.read_dataframe(out / "change_polygons.gpkg", layer="change_polygons")
    assert {"from_id", "to_id", "from_name", "to_name", "area_ha", "date_from", "date_to"} <= set(
        gdf.columns
    )
    got = sorted(zip(gdf.from_name, gdf.to_name, gdf.area_ha.round(6), strict=True))
    assert got == [("Forest", "Grass", 0.04), ("Water", "Built", 6.0)]
    # dates, not strings, in every format (io.vector.date_column)
    assert set(gdf.date_from.astype(str)) == {"2009-08-18"}
    assert set(gdf.date_to.astype(str)) == {"2020-08-31"}
    res = change(
        pair["before"], pair["after"], tmp_path / "mmu", client=client, block=64, mmu_ha=0.1
    )
    gdf = pyogrio.read_dataframe(tmp_path / "mmu" / "change_polygons.gpkg", layer="change_polygons")
    assert list(gdf.code) == [104]
    assert res.report["polygons"]["changed_ha_below_mmu"] == pytest.approx(0.04)


def test_other_crs_is_warped_and_finds_the_planted_change(client, tmp_path):
    before = np.full((H, W), 2, np.uint8)
    after = before.copy()
    rect = (slice(30, 60), slice(40, 90))
    after[rect] = 4
    b = write_date(tmp_path, "b_2010-06-01", before, np.full((H, W), HI))
    dst_crs = "EPSG:32613"
    bounds = rasterio.transform.array_bounds(H, W, TRANSFORM)
    tr, w, h = calculate_default_transform(CRS, dst_crs, W, H, *bounds, resolution=10.0)
    warped = np.zeros((h, w), np.uint8)
    reproject(
        after,
        warped,
        src_transform=TRANSFORM,
        src_crs=CRS,
        dst_transform=tr,
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
        src_nodata=0,
        dst_nodata=0,
    )
    a = write_date(tmp_path, "a_2015-06-01", warped, np.full((h, w), HI), crs=dst_crs, transform=tr)
    res = change(b, a, tmp_path / "out", client=client, block=64)
    assert "warped onto it block by block with nearest neighbour" in res.report["after"]["read"]
    assert res.report["grid"]["crs"] == CRS
    status, _ = read(tmp_path / "out" / "change_mask.tif")
    changed = status == 2
    near = np.zeros_like(changed)
    near[29:61, 39:91] = True  # the rectangle grown by one pixel
    inner = np.zeros_like(changed)
    inner[31:59, 41:89] = True  # and shrunk by one
    assert changed[inner].all() and not changed[~near].any()
    assert (status == 0).sum() < 2 * (H + W)  # nodata at most along the resampled edges
    res = change(b, a, tmp_path / "on_after", client=client, block=64, grid="after")
    assert res.report["grid"]["crs"] == dst_crs and "warped" in res.report["before"]["read"]
    assert abs(res.report["pixels"]["changed"] - 30 * 50) <= 2 * (30 + 50)


def test_accuracy_raster_and_stratified_points(pair, run, client, tmp_path):
    from geoseg.accuracy.sample import sample

    b, a = pair["b"], pair["a"]
    truth = np.zeros((H, W), np.uint8)
    truth[R1] = truth[R2] = truth[R3] = 1
    with rasterio.open(
        tmp_path / "ref.tif",
        "w",
        driver="GTiff",
        height=H,
        width=W,
        count=1,
        dtype="uint8",
        crs=CRS,
        transform=TRANSFORM,
        nodata=255,
    ) as d:
        d.write(truth, 1)
    res = change(
        pair["before"],
        pair["after"],
        tmp_path / "r",
        client=client,
        block=64,
        reference=tmp_path / "ref.tif",
    )
    acc = res.report["accuracy"]
    assert acc["kind"] == "change"
    assert acc["change"]["change_producers_accuracy"] == pytest.approx(604 / 1204)
    assert acc["change"]["change_users_accuracy"] == 1.0
    assert acc["change_without_gate"]["change_producers_accuracy"] == 1.0
    valid = (b > 0) & (a > 0)
    codes = np.where(valid, b.astype(np.uint16) * 100 + a, 65535).astype(np.uint16)
    with rasterio.open(
        tmp_path / "codes.tif",
        "w",
        driver="GTiff",
        height=H,
        width=W,
        count=1,
        dtype="uint16",
        crs=CRS,
        transform=TRANSFORM,
        nodata=65535,
    ) as d:
        d.write(codes, 1)
    res = change(
        pair["before"],
        pair["after"],
        tmp_path / "c",
        client=client,
        block=64,
        reference=tmp_path / "codes.tif",
    )
    assert res.report["accuracy"]["transitions"]["overall_accuracy"] == 1.0
    pts = tmp_path / "pts.gpkg"
    sample(run[1] / "change_mask.tif", pts, n=45, min_per_class=15, client=client)
    gdf = pyogrio.read_dataframe(pts, layer="points")
    rows, cols = rasterio.transform.rowcol(TRANSFORM, gdf.geometry.x, gdf.geometry.y)
    gdf["ref_class"] = truth[np.asarray(rows), np.asarray(cols)].astype("int32")
    pyogrio.write_dataframe(gdf, pts, layer="points")
    res = change(
        pair["before"], pair["after"], tmp_path / "p", client=client, block=64, reference=pts
    )
    st = res.report["accuracy"]["stratified"]
    assert st is not None and "geoseg sample" in st["design"]
    assert st["change_area_ha"]["estimate"] == pytest.approx(12.04)
    assert st["change_producers_accuracy"]["estimate"] == pytest.approx(604 / 1204)
    assert st["overall_accuracy"]["estimate"] == pytest.approx(1 - 6.0 / (valid.sum() * 0.01))


def test_engine_path_predicts_both_dates(synth, bundles, client, tmp_path):
    s1, _ = synth(64, 64, seed=1, patch=24)
    s2, _ = synth(64, 64, seed=2, patch=24)
    res = change(
        s1,
        s2,
        tmp_path / "m",
        model=bundles("pixelnet", tile=64, overlap=16),
        client=client,
        block=64,
    )
    assert res.report["gate"]["applied"]
    bcls, _ = read(res.outputs["before_classes"])
    acls, _ = read(res.outputs["after_classes"])
    codes, _ = read(tmp_path / "m" / "change_fromto.tif")
    np.testing.assert_array_equal(codes, bcls.astype(np.uint16) * 100 + acls)
    assert res.report["before"]["probabilities"].endswith("_probabilities.tif")


def test_cli_runs_and_rejects_dates_without_overlap(pair, tmp_path):
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            "change",
            "--before",
            str(pair["before"]),
            "--after",
            str(pair["after"]),
            "--out",
            str(tmp_path / "cli"),
            "--workers",
            "1",
            "--block",
            "64",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "changed" in r.output and (tmp_path / "cli" / "report.json").exists()
    far = write_date(
        tmp_path,
        "far_2020-01-01",
        pair["a"],
        np.full((H, W), HI),
        transform=from_origin(900000.0, 4200000.0, 10.0, 10.0),
    )
    r = runner.invoke(
        app,
        [
            "change",
            "--before",
            str(pair["before"]),
            "--after",
            str(far),
            "--out",
            str(tmp_path / "bad"),
            "--workers",
            "1",
        ],
    )
    assert r.exit_code != 0
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "do not overlap" in lines[0]
    assert not (tmp_path / "bad").exists()


def test_bad_inputs_are_one_line_errors(pair, tmp_path):
    other = [{"id": 1, "name": "Lake"}, *CLASSES[1:]]
    cl = load_classes(other)
    wr = CogWriter(RasterSpec(H, W, 1, CRS, TRANSFORM, nodata=0, classes=cl), tmp_path / "s")
    wr.write(Window(0, 0, H, W), pair["a"])
    renamed = wr.finish(tmp_path / "renamed.tif")
    with pytest.raises(GeoSegError, match="disagree on id 1"):
        change(pair["before"], renamed, tmp_path / "x", workers=1)
    with pytest.raises(GeoSegError, match="threshold"):
        change(pair["before"], pair["after"], tmp_path / "y", threshold=1.5)
    assert not (tmp_path / "y").exists()


def test_failure_after_writing_leaves_no_partial_outputs(pair, client, tmp_path, monkeypatch):
    import geoseg.change.change as mod

    out = tmp_path / "o"
    change(pair["before"], pair["after"], out, client=client, block=64)
    assert (out / "report.json").exists()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mod, "change_polygons", broken)
    with pytest.raises(OSError, match="disk full"):
        change(pair["before"], pair["after"], out, client=client, block=64, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == []

"""geoseg compare and McNemar's test, on synthetic maps with a known difference."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rio_cogeo.cogeo import cog_validate
from scipy.stats import binomtest, chi2, norm
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.compare.compare import compare
from geoseg.core import metrics as mx
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.cog import CogWriter, RasterSpec

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
H, W = 120, 150


def _cog(path, arr, prof, classes=CLASSES5):
    writer = CogWriter(
        RasterSpec(
            arr.shape[0],
            arr.shape[1],
            1,
            prof["crs"],
            prof["transform"],
            nodata=0,
            classes=load_classes(classes),
        ),
        path.parent / "scratch",
    )
    writer.write(Window(0, 0, *arr.shape), arr)
    return writer.finish(path)


def _perturb(lab, share, seed):
    rng = np.random.default_rng(seed)
    wrong = rng.random(lab.shape) < share
    other = (lab - 1 + rng.integers(1, 5, lab.shape)) % 5 + 1  # always a different class
    return np.where(wrong, other, lab).astype(np.uint8)


@pytest.fixture(scope="module")
def maps(synth, tmp_path_factory):
    """Reference = the synthetic labels; map A wrong on ~10 % of pixels, map B on ~25 %;
    map A has a nodata patch; the reference has an unlabelled strip."""
    root = tmp_path_factory.mktemp("cmp")
    _, labels = synth(H, W, patch=30, seed=8)
    with rasterio.open(labels) as s:
        lab, prof = s.read(1), s.profile
    a, b = _perturb(lab, 0.10, 1), _perturb(lab, 0.25, 2)
    a[:10, :20] = 0
    ref = lab.copy()
    ref[:, -7:] = 0
    return {
        "lab": lab,
        "a": a,
        "b": b,
        "ref": ref,
        "prof": prof,
        "root": root,
        "pa": _cog(root / "a.tif", a, prof),
        "pb": _cog(root / "b.tif", b, prof),
        "pr": _cog(root / "ref.tif", ref, prof),
    }


def test_mcnemar_by_hand_and_against_scipy():
    t = mx.mcnemar(50, 30, 12, 8)
    z = (abs(30 - 12) - 1) / math.sqrt(30 + 12)  # 17 / sqrt(42) = 2.623...
    assert t.z == pytest.approx(z) and t.chi2 == pytest.approx(17**2 / 42)
    assert t.p_chi2 == pytest.approx(chi2.sf(17**2 / 42, 1))
    assert t.p_chi2 == pytest.approx(2 * norm.sf(z))
    exact = 2 * sum(math.comb(42, k) for k in range(13)) / 2**42  # two-sided, b + c = 42
    assert t.p_exact == pytest.approx(exact) == binomtest(30, 42, 0.5).pvalue
    assert t.p == t.p_chi2 and t.n == 100  # 42 discordant pairs: the chi-square p
    s = mx.mcnemar(10, 3, 9, 0)  # 12 discordant pairs: the exact p
    assert s.z < 0 and s.method == "exact binomial"
    assert s.p == pytest.approx(2 * sum(math.comb(12, k) for k in range(4)) / 2**12)
    same = mx.mcnemar(5, 0, 0, 5)
    assert same.p == 1 and same.z == 0


def test_two_maps_with_a_known_difference(client, maps, tmp_path):
    lab, a, b, ref = maps["lab"], maps["a"], maps["b"], maps["ref"]
    rep = compare(
        [maps["pa"], maps["pb"]],
        maps["pr"],
        tmp_path / "c",
        names=["A", "B"],
        client=client,
        block=64,
    )
    used = (ref > 0) & (a > 0) & (b > 0)
    ra, rb = (a == ref)[used], (b == ref)[used]
    counts = [
        int((ra & rb).sum()),
        int((ra & ~rb).sum()),
        int((~ra & rb).sum()),
        int((~ra & ~rb).sum()),
    ]
    assert rep["compared"] == used.sum() and rep["unit"] == "pixels"
    assert rep["excluded"] == {"some_map_nodata": int(((ref > 0) & ~((a > 0) & (b > 0))).sum())}
    p = rep["pairs"][0]
    t = p["mcnemar"]
    assert [t["both_right"], t["a_only"], t["b_only"], t["both_wrong"]] == counts
    assert t["z"] == pytest.approx((counts[1] - counts[2] - 1) / math.sqrt(counts[1] + counts[2]))
    assert t["p"] < 1e-10 and p["oa_difference"] == pytest.approx(ra.mean() - rb.mean())
    assert p["oa_a"] == pytest.approx(0.9, abs=0.02) and p["oa_b"] == pytest.approx(0.75, abs=0.02)
    cm_a = mx.confusion_matrix(a[used].astype(int) - 1, ref[used].astype(int) - 1, 5)
    assert rep["per_map"][0]["confusion_matrix"] == cm_a.tolist()
    f1 = mx.f1_scores(cm_a)
    d = p["per_class_differences"][2]
    assert d["f1_a"] == pytest.approx(f1[2]) and d["f1_difference"] > 0
    # files
    out = tmp_path / "c"
    assert (
        json.loads((out / "compare.json").read_text())["pairs"][0]["mcnemar"]["a_only"] == counts[1]
    )
    assert (out / "mcnemar.csv").read_text().splitlines()[1].startswith("A,B,")
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert {
        "metrics.csv",
        "per_class.csv",
        "per_class_differences.csv",
        "confusion_matrix_A.csv",
    } <= {f.name for f in out.iterdir()}
    assert not list(out.glob(".geoseg-*"))
    # the disagreement map: codes by hand, a valid COG, palette and names re-read
    dmap = out / "disagreement_A_vs_B.tif"
    assert rep["files"]["disagreement_A_vs_B"] == str(dmap)
    ok, errors, _ = cog_validate(str(dmap))
    assert ok, errors
    with rasterio.open(dmap) as s:
        codes = s.read(1)
        assert s.nodata == 0 and s.crs == maps["prof"]["crs"]
        cmap = s.colormap(1)
    expect = np.zeros(lab.shape, np.uint8)
    expect[used] = np.select([ra & rb, ra & ~rb, ~ra & rb], [1, 2, 3], 4)
    np.testing.assert_array_equal(codes, expect)
    assert cmap[2][:3] == (0x1F, 0x78, 0xB4) and cmap[3][:3] == (0xE3, 0x1A, 0x1C)
    cats = [c.text or "" for c in ET.parse(f"{dmap}.aux.xml").iter("Category")]
    assert cats == ["nodata", "both right", "A right, B wrong", "B right, A wrong", "both wrong"]


def test_three_maps_and_a_point_reference(client, maps, tmp_path):
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, H, 300), rng.integers(0, W, 300)
    t = maps["prof"]["transform"]
    xs, ys = t * (cols + 0.5, rows + 0.5)
    gdf = gpd.GeoDataFrame(
        {"class": maps["lab"][rows, cols].astype(int)},
        geometry=shapely.points(xs, ys),
        crs=maps["prof"]["crs"],
    )
    pts = tmp_path / "pts.gpkg"
    gdf.to_file(pts)
    rep = compare([maps["pa"], maps["pb"], maps["pr"]], pts, tmp_path / "p", client=client)
    assert [p["a"] + "/" + p["b"] for p in rep["pairs"]] == ["a/b", "a/ref", "b/ref"]
    a, ref = maps["a"][rows, cols], maps["ref"][rows, cols]
    used = (a > 0) & (ref > 0)
    assert rep["unit"] == "points" and rep["compared"] == used.sum()
    assert rep["per_map"][0]["overall_accuracy"] == pytest.approx(
        (a[used] == maps["lab"][rows, cols][used]).mean()
    )
    assert all(p["disagreement_map"] is None for p in rep["pairs"])


def test_a_map_on_another_grid_is_read_on_the_first(client, maps, tmp_path):
    prof = maps["prof"]
    # B's grid starts 3 pixels east: its column c lies on column c + 3 of A's grid
    other = dict(prof, transform=prof["transform"] * rasterio.Affine.translation(3, 0))
    shifted = _cog(tmp_path / "shifted.tif", maps["b"], other)
    by_hand = np.zeros_like(maps["b"])
    by_hand[:, 3:] = maps["b"][:, :-3]
    on_grid = _cog(tmp_path / "on_grid.tif", by_hand, prof)
    got = compare([maps["pa"], shifted], maps["pr"], tmp_path / "s", client=client)
    want = compare([maps["pa"], on_grid], maps["pr"], tmp_path / "h", client=client)
    assert got["compared"] == want["compared"]
    for g, w in zip(got["per_map"], want["per_map"], strict=True):
        assert g["overall_accuracy"] == w["overall_accuracy"]
    assert got["pairs"][0]["mcnemar"] == want["pairs"][0]["mcnemar"]
    assert got["notes"][0].startswith("map shifted (EPSG:32612, 10 x 10, 150 x 120 px) differs")
    assert "in extent (nodata where it does not cover the grid)" in got["notes"][0]
    x, y = (rasterio.open(r["pairs"][0]["disagreement_map"]) for r in (got, want))
    with x, y:
        assert np.array_equal(x.read(1), y.read(1))
    # half a pixel off: warped block by block with nearest neighbour, and said so
    half = dict(prof, transform=prof["transform"] * rasterio.Affine.translation(0.5, 0))
    rep = compare(
        [maps["pa"], _cog(tmp_path / "half.tif", maps["b"], half)],
        maps["pr"],
        tmp_path / "w",
        client=client,
    )
    assert "pixel lattice (origin shifted by a fraction of a pixel): warped" in rep["notes"][0]


def test_bad_inputs_are_one_line_errors(client, maps, tmp_path):
    prof = maps["prof"]
    cases = [
        (([maps["pa"]], maps["pr"]), {}, "two maps or more"),
        (([maps["pa"], maps["pb"]], maps["pr"]), {"names": ["x"]}, "one name per map"),
        (
            (
                [
                    maps["pa"],
                    _cog(
                        tmp_path / "six.tif", maps["a"], prof, CLASSES5 + [{"id": 6, "name": "six"}]
                    ),
                ],
                maps["pr"],
            ),
            {},
            "has classes",
        ),
    ]
    bad_ref = maps["ref"].copy()
    bad_ref[5, 5] = 9
    path = tmp_path / "badref.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=H,
        width=W,
        count=1,
        dtype="uint8",
        crs=prof["crs"],
        transform=prof["transform"],
        nodata=0,
    ) as d:
        d.write(bad_ref, 1)
    cases.append((([maps["pa"], maps["pb"]], path), {}, "class ids \\[9\\]"))
    for k, ((mp, ref), kw, match) in enumerate(cases):
        with pytest.raises(GeoSegError, match=match) as e:
            compare(mp, ref, tmp_path / f"o{k}", client=client, **kw)
        assert "\n" not in str(e.value)


def test_cli_compare(client, maps, tmp_path):
    r = CliRunner().invoke(
        app,
        [
            "compare",
            str(maps["pa"]),
            str(maps["pb"]),
            "--reference",
            str(maps["pr"]),
            "--out",
            str(tmp_path / "cli"),
            "--names",
            "deep,obia",
            "--scheduler",
            client.scheduler.address,
        ],
    )
    assert r.exit_code == 0, r.output
    assert "deep vs obia: OA difference" in r.output and "McNemar" in r.output
    r = CliRunner().invoke(
        app,
        [
            "compare",
            str(maps["pa"]),
            "--reference",
            str(maps["pr"]),
            "--out",
            str(tmp_path / "cli2"),
        ],
    )
    assert r.exit_code == 2 and "two maps or more" in r.output
    r = CliRunner().invoke(
        app,
        ["compare", str(maps["pa"]), str(maps["pb"]), "--reference", str(maps["pr"])]
        + ["--reference-field", "id", "--field", "id", "--out", str(tmp_path / "cli3")],
    )  # --field is the old, hidden spelling of --reference-field
    assert r.exit_code == 2 and "give only --reference-field" in r.output
    assert not (tmp_path / "cli3").exists()


def test_polygon_reference(client, maps, tmp_path):
    t = maps["prof"]["transform"]
    x0, y0 = t * (10, 10)
    x1, y1 = t * (90, 70)
    x2, y2 = t * (140, 110)
    gdf = gpd.GeoDataFrame(
        {"class": [2, 4]},
        geometry=[shapely.box(x0, y1, x1, y0), shapely.box(x1, y2, x2, y1)],
        crs=maps["prof"]["crs"],
    )
    path = tmp_path / "poly.gpkg"
    gdf.to_file(path)
    rep = compare([maps["pa"], maps["pb"]], path, tmp_path / "g", client=client, block=64)
    from rasterio.features import rasterize

    ref = rasterize(
        zip(gdf.geometry, gdf["class"], strict=True),
        out_shape=(H, W),
        transform=t,
        fill=0,
        dtype="uint8",
    )
    a, b = maps["a"], maps["b"]
    used = (ref > 0) & (a > 0) & (b > 0)
    assert rep["compared"] == used.sum() and rep["unit"] == "pixels"
    ra, rb = (a == ref)[used], (b == ref)[used]
    t_ = rep["pairs"][0]["mcnemar"]
    assert (t_["a_only"], t_["b_only"]) == (int((ra & ~rb).sum()), int((~ra & rb).sum()))
    assert rep["pairs"][0]["disagreement_map"].endswith("disagreement_a_vs_b.tif")

"""Vectorization: block-wise polygonization equals whole-raster polygonization; MMU; coverage
simplification; formats, attributes and styles re-read from real files; no partial output."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyogrio
import pytest
import rasterio
import shapely
from rasterio import features
from rasterio.transform import from_origin
from shapely.geometry import shape

from geoseg.errors import GeoSegError
from geoseg.vector.vectorize import vectorize

TR = from_origin(500000.0, 4200000.0, 10.0, 10.0)
CLASSES = [
    {"id": 1, "name": "Water", "color": "#1f78b4"},
    {"id": 2, "name": "Forest", "color": "#33a02c"},
    {"id": 3, "name": "Built-up", "color": "#e31a1c"},
]


def write_classes(
    path: Path,
    arr: np.ndarray,
    *,
    crs="EPSG:32612",
    transform=TR,
    tags: dict | None = None,
    classes: list[dict] = CLASSES,
) -> Path:
    prof = dict(
        driver="GTiff", height=arr.shape[0], width=arr.shape[1], count=1, dtype="uint8", nodata=0
    )
    if crs:
        prof.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(arr, 1)
        ds.update_tags(1, CLASSES=json.dumps(classes))
        if tags:
            ds.update_tags(**tags)
    return path


def speckle(h: int, w: int, seed: int = 0, cell: int = 3, flip: float = 0.15) -> np.ndarray:
    """Small random patches plus isolated pixels: many diagonal contacts, some nodata."""
    rng = np.random.default_rng(seed)
    a = np.kron(
        rng.integers(1, 4, (h // cell + 1, w // cell + 1)), np.ones((cell, cell), dtype=np.int64)
    )[:h, :w].astype(np.uint8)
    m = rng.random((h, w)) < flip
    a[m] = rng.integers(0, 4, m.sum())
    a[: h // 5, : w // 6] = 0
    return a


def read(path: Path, layer: str | None = None):
    return pyogrio.read_dataframe(path, layer=layer or Path(path).stem)


def reference(arr: np.ndarray, connectivity: int) -> list[tuple[int, float]]:
    """Whole-raster polygonization: (class, area) of every polygon."""
    return [
        (int(v), shape(g).area)
        for g, v in features.shapes(arr, mask=arr != 0, connectivity=connectivity, transform=TR)
    ]


def per_class(pairs) -> dict[int, float]:
    out: Counter = Counter()
    for c, a in pairs:
        out[c] += a
    return dict(out)


def assert_same_polygons(df, ref) -> None:
    got = list(zip(df["class_id"].astype(int), shapely.area(df.geometry.values), strict=True))
    assert len(got) == len(ref)
    ref_area, got_area = per_class(ref), per_class(got)
    assert set(ref_area) == set(got_area)
    for c in ref_area:
        assert abs(got_area[c] - ref_area[c]) <= 1e-9 * ref_area[c]
    # polygon by polygon, too: the same multiset of (class, area in pixels)
    assert Counter((c, round(a / 100)) for c, a in got) == Counter(
        (c, round(a / 100)) for c, a in ref
    )


@pytest.fixture(scope="module")
def speck(tmp_path_factory):
    d = tmp_path_factory.mktemp("vec")
    arr = speckle(230, 301)
    return write_classes(d / "speck.tif", arr), arr


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("block", [64, 100, 4096])
def test_blocks_equal_whole_raster(client, speck, tmp_path, connectivity, block):
    path, arr = speck
    out = vectorize(
        path, tmp_path / "v.gpkg", connectivity=connectivity, block=block, client=client
    )
    df = read(out)
    assert_same_polygons(df, reference(arr, connectivity))
    assert shapely.is_valid(df.geometry.values).all()
    assert df["poly_id"].is_unique


def test_diagonal_contact_across_block_corner(client, tmp_path):
    """Same-class pixels touching only diagonally across the corner of four blocks: one polygon
    with 8-connectivity, two with 4-connectivity, as for the whole raster."""
    arr = np.full((128, 128), 3, dtype=np.uint8)
    arr[63, 63] = arr[64, 64] = 1
    arr[63, 64] = arr[64, 63] = 2
    arr[10, 63] = arr[11, 64] = 1  # diagonal across a vertical block edge
    path = write_classes(tmp_path / "corner.tif", arr)
    for conn, n1 in ((4, 4), (8, 2)):
        df = read(
            vectorize(path, tmp_path / f"c{conn}.gpkg", connectivity=conn, block=64, client=client)
        )
        assert (df["class_id"] == 1).sum() == n1
        assert_same_polygons(df, reference(arr, conn))


def test_real_landcover_equals_whole_raster(client, data_dir, tmp_path):
    """NC land classes (GRASS nc_spm landclass96, float32 with -99999 nodata) as uint8."""
    with rasterio.open(data_dir / "nc" / "strata.tif") as ds:
        raw, tr, crs = ds.read(1), ds.transform, ds.crs
    arr = np.where(raw > 0, raw, 0).astype(np.uint8)
    path = tmp_path / "strata.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[0],
        width=arr.shape[1],
        count=1,
        dtype="uint8",
        nodata=0,
        crs=crs,
        transform=tr,
    ) as ds:
        ds.write(arr, 1)
    for conn in (4, 8):
        df = read(
            vectorize(
                path, tmp_path / f"strata{conn}.gpkg", block=128, connectivity=conn, client=client
            )
        )
        ref = [
            (int(v), shape(g).area)
            for g, v in features.shapes(arr, mask=arr != 0, connectivity=conn, transform=tr)
        ]
        got = list(zip(df["class_id"].astype(int), shapely.area(df.geometry.values), strict=True))
        assert len(got) == len(ref)
        for c, a in per_class(ref).items():
            assert per_class(got)[c] == pytest.approx(a, rel=1e-9)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_mmu_absorbs_small_polygons(client, speck, tmp_path, connectivity):
    path, arr = speck
    mmu = 0.15  # ha = 15 pixels of 10 m
    areas = {}
    for block in (64, 4096):
        df = read(
            vectorize(
                path,
                tmp_path / f"m{block}.gpkg",
                mmu_ha=mmu,
                block=block,
                connectivity=connectivity,
                client=client,
            )
        )
        geoms = df.geometry.values
        a = shapely.area(geoms)
        assert a.min() >= mmu * 1e4 - 1e-6
        assert (df["area_ha"] >= mmu - 1e-9).all()
        assert a.sum() == pytest.approx((arr != 0).sum() * 100.0, rel=1e-12)
        assert shapely.area(shapely.union_all(geoms)) == pytest.approx(a.sum(), rel=1e-9)
        areas[block] = sorted(zip(df["class_id"], np.round(a, 3), strict=True))
        assert len(df) < len(reference(arr, connectivity)) / 3
    # regions crossing block edges are judged on their full size: same result for any block
    assert areas[64] == areas[4096]


def test_simplify_keeps_a_coverage(client, synth, tmp_path):
    _, labels = synth(256, 320, patch=40, seed=4)
    before = read(vectorize(labels, tmp_path / "raw.gpkg", block=64, client=client))
    df = read(vectorize(labels, tmp_path / "s.gpkg", simplify=25.0, block=64, client=client))
    geoms = df.geometry.values
    assert len(df) == len(before)
    assert (
        shapely.get_num_coordinates(geoms).sum()
        < 0.6 * shapely.get_num_coordinates(before.geometry.values).sum()
    )
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    pairs = a < b
    overlap = shapely.area(shapely.intersection(geoms[a[pairs]], geoms[b[pairs]])).sum()
    total = 256 * 320 * 100.0
    assert pairs.sum() > len(df)  # neighbours do touch...
    assert overlap < 1e-6 * total  # ...without overlapping
    assert shapely.area(shapely.union_all(geoms)) == pytest.approx(total, rel=1e-9)  # no gaps
    assert shapely.area(geoms).sum() == pytest.approx(total, rel=1e-9)


def _ogr_formats() -> str:
    return subprocess.run(["ogrinfo", "--formats"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "parquet", "fgb", "geojson"])
def test_formats_reread(client, speck, tmp_path, fmt):
    path, arr = speck
    suffix = {"parquet": ".parquet"}.get(fmt, f".{fmt}")
    out = vectorize(path, tmp_path / f"layer{suffix}", fmt=fmt, block=100, client=client)
    n = len(reference(arr, 4))
    if fmt == "parquet":
        import geopandas as gpd

        df = gpd.read_parquet(out)
        geo = json.loads(pq.read_schema(out).metadata[b"geo"])
        assert geo["version"].startswith("1.")
        col = geo["columns"][geo["primary_column"]]
        assert col["encoding"] == "WKB" and "Polygon" in col["geometry_types"]
        assert col["crs"]["id"]["code"] == 32612
        # GeoParquet 1.1: a bbox covering column of doubles that bounds every geometry, ZSTD
        assert geo["version"] == "1.1.0"
        cover = col["covering"]["bbox"]
        assert cover == {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}
        table = pq.read_table(out)
        bbox = table["bbox"].combine_chunks()
        got = np.column_stack([bbox.field(k).to_numpy() for k in ("xmin", "ymin", "xmax", "ymax")])
        np.testing.assert_allclose(got, shapely.bounds(df.geometry.values))
        assert col["bbox"] == pytest.approx([*got[:, :2].min(0), *got[:, 2:].max(0)])
        meta = pq.ParquetFile(out).metadata
        assert {
            meta.row_group(g).column(c).compression
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
        } == {"ZSTD"}
        if shutil.which("ogrinfo") and "Parquet" in _ogr_formats():  # GDAL >= 3.8 builds
            r = subprocess.run(["ogrinfo", "-so", "-al", str(out)], capture_output=True, text=True)
            assert r.returncode == 0 and f"Feature Count: {n}" in r.stdout, r.stderr
    elif fmt == "geojson":  # RFC 7946: WGS84 longitude/latitude, reprojected on write
        df = read(out)
        assert pyogrio.read_info(out, layer="layer")["crs"] in ("EPSG:4326", "OGC:CRS84")
        from pyproj import Transformer

        with rasterio.open(path) as src:
            b = src.bounds
        to_ll = Transformer.from_crs("EPSG:32612", "EPSG:4326", always_xy=True)
        (x0, x1), (y0, y1) = to_ll.transform([b.left, b.right], [b.bottom, b.top])
        lon, lat = shapely.get_coordinates(df.geometry.values).T
        tol = 1e-4  # degrees: the corners' edges are not parallels and meridians
        assert (lon > x0 - tol).all() and (lon < x1 + tol).all()
        assert (lat > y0 - tol).all() and (lat < y1 + tol).all()
        # full precision: back in UTM the polygons cover the raster's area to 1e-9
        utm = df.set_crs("EPSG:4326", allow_override=True).to_crs("EPSG:32612")
        assert utm.area.sum() == pytest.approx(df["area_ha"].sum() * 1e4, rel=1e-9)
        if shutil.which("ogr2ogr"):  # the GIS user's reprojection that failed before
            merc = tmp_path / "merc.gpkg"
            r = subprocess.run(
                ["ogr2ogr", "-t_srs", "EPSG:3857", str(merc), str(out)],
                capture_output=True,
                text=True,
            )
            assert r.returncode == 0 and "Invalid latitude" not in r.stderr
            assert pyogrio.read_info(merc)["features"] == n
    else:
        df = read(out)
        assert pyogrio.read_info(out, layer="layer")["crs"] == "EPSG:32612"
    assert len(df) == n
    assert {
        "poly_id",
        "class_id",
        "class_name",
        "area_ha",
        "perim_m",
        "source",
        "date",
        "model",
        "model_ver",
    } <= set(df.columns)
    if fmt == "gpkg":  # the style lives in layer_styles, where QGIS finds it
        assert not (tmp_path / "layer.qml").exists()
    else:
        qml = (tmp_path / "layer.qml").read_text()
        assert 'attr="class_id"' in qml and "Built-up" in qml and "31,120,180,255" in qml
    if fmt == "shp":
        assert all(len(c) <= 10 for c in pyogrio.read_info(out)["fields"])
        assert (tmp_path / "layer.prj").exists()
        assert (tmp_path / "layer.cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
    if fmt == "gpkg":
        with sqlite3.connect(out) as con:
            assert con.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47
            assert con.execute("PRAGMA user_version").fetchone()[0] == 10300
            row = con.execute(
                "SELECT f_table_name, f_geometry_column, styleQML, useAsDefault FROM layer_styles"
            ).fetchone()
            kind = con.execute(
                "SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'"
            ).fetchone()
        assert row[0] == "layer" and row[1] == "geom" and row[3] == 1
        assert 'type="categorizedSymbol"' in row[2]
        assert kind == ("attributes",)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def _ogr_field_types(path: Path) -> dict[str, str]:
    """Field name -> OGR type as GDAL's own ogrinfo reports it (what QGIS shows)."""
    r = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    types = {}
    for line in r.stdout.splitlines():
        name, sep, rest = line.partition(": ")
        if sep and rest.split(" (")[0] in (
            "Integer",
            "Integer64",
            "Real",
            "String",
            "Date",
            "DateTime",
        ):
            types[name.strip()] = rest.split(" (")[0]
    return types


def test_field_types_equal_in_every_format(client, speck, tmp_path):
    """One type per field whatever the format: the date is a date (FlatGeobuf has only a
    date-time type), ids are 32-bit integers everywhere (what GeoJSON readers infer)."""
    path, _ = speck
    types = {}
    for fmt in ("gpkg", "shp", "parquet", "fgb", "geojson"):
        out = vectorize(
            path, tmp_path / f"t.{fmt}", block=100, client=client, attrs={"date": "2015-08-18"}
        )
        if fmt == "parquet":
            schema = pq.read_schema(out)
            types[fmt] = {f.name: str(f.type) for f in schema if f.name not in ("geometry", "bbox")}
            continue
        info = pyogrio.read_info(out, layer="t")
        types[fmt] = dict(zip(info["fields"], info["dtypes"], strict=True))
        if shutil.which("ogrinfo"):
            assert _ogr_field_types(out)["date"] == ("DateTime" if fmt == "fgb" else "Date")
    first = types["gpkg"]
    assert first["date"] == "datetime64[D]" and first["poly_id"] == "int32"
    for fmt in ("shp", "geojson"):
        assert types[fmt] == first, fmt
    assert {k: v for k, v in types["fgb"].items() if k != "date"} == {
        k: v for k, v in first.items() if k != "date"
    }
    assert types["fgb"]["date"].startswith("datetime64")
    assert types["parquet"]["date"] == "date32[day]" and types["parquet"]["poly_id"] == "int32"
    assert set(types["parquet"]) == set(first)


def test_attributes(client, tmp_path):
    arr = speckle(120, 150, seed=5, cell=6, flip=0.02)
    tags = {"GEOSEG_MODEL": "demo-net 1.2.0", "GEOSEG_SOURCE": "/data/scene_a.tif"}
    path = write_classes(tmp_path / "map.tif", arr, tags=tags)
    conf = np.random.default_rng(1).integers(0, 255, arr.shape).astype(np.uint8)
    with rasterio.open(
        tmp_path / "map_confidence.tif",
        "w",
        driver="GTiff",
        height=120,
        width=150,
        count=1,
        dtype="uint8",
        nodata=255,
        crs="EPSG:32612",
        transform=TR,
    ) as ds:
        ds.write(conf, 1)
        ds.scales = (1 / 254,)
    df = read(vectorize(path, tmp_path / "map.gpkg", block=64, client=client))
    assert set(df["class_name"]) == {"Water", "Forest", "Built-up"}
    assert (df["model"] == "demo-net").all() and (df["model_ver"] == "1.2.0").all()
    assert (df["source"] == "scene_a.tif").all()
    assert np.allclose(df["area_ha"], df.geometry.area / 1e4)
    assert np.allclose(df["perim_m"], df.geometry.length)
    # mean confidence per polygon, from its own pixels
    ids = features.rasterize(
        zip(df.geometry.values, range(len(df)), strict=True),
        out_shape=arr.shape,
        transform=TR,
        fill=-1,
        dtype="int32",
    )
    ok = (ids >= 0) & (conf != 255)
    s = np.bincount(ids[ok], weights=conf[ok], minlength=len(df))
    k = np.bincount(ids[ok], minlength=len(df))
    expect = np.where(k > 0, s / np.maximum(k, 1) / 254, np.nan)
    assert np.allclose(df["confidence"], expect, atol=1e-4, equal_nan=True)
    over = read(
        vectorize(
            path,
            tmp_path / "o.gpkg",
            block=64,
            client=client,
            probabilities=False,
            attrs={"date": "2015-08-18", "model": "other", "site": "Zion"},
        )
    )
    assert "confidence" not in over.columns
    assert (over["date"] == "2015-08-18").all() and (over["model"] == "other").all()
    assert (over["site"] == "Zion").all()


def test_cli(client, speck, tmp_path):
    from typer.testing import CliRunner

    from geoseg.cli.main import app

    path, arr = speck
    out = tmp_path / "cli.shp"
    args = [
        "vectorize",
        str(path),
        "--out",
        str(out),
        "--format",
        "shp",
        "--connectivity",
        "8",
        "--block",
        "100",
        "--scheduler",
        client.scheduler.address,
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    assert len(read(out)) == len(reference(arr, 8))
    res = CliRunner().invoke(app, args)  # exists: one-line error, no traceback
    assert res.exit_code == 2 and "--overwrite" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, args + ["--overwrite", "--mmu", "0.2", "--attr", "a=b"])
    assert res.exit_code == 0, res.output
    df = read(out)
    assert shapely.area(df.geometry.values).min() >= 0.2e4 - 1e-6 and (df["a"] == "b").all()
    res = CliRunner().invoke(app, args + ["--overwrite", "--attr", "novalue"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output


def test_failure_leaves_no_output(client, speck, tmp_path, monkeypatch):
    import geoseg.io.vector as vio

    path, _ = speck

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(vio, "add_layer_style", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        vectorize(path, tmp_path / "x.gpkg", block=100, client=client)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(vio, "SHP_MAX_BYTES", 10_000)
    with pytest.raises(GeoSegError, match="2 GB"):
        vectorize(path, tmp_path / "x.shp", block=100, client=client)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_input_errors(client, speck, tmp_path):
    path, arr = speck
    geo = write_classes(
        tmp_path / "geo.tif", arr, crs="EPSG:4326", transform=from_origin(-110.0, 37.0, 1e-4, 1e-4)
    )
    with pytest.raises(GeoSegError, match="geographic"):
        vectorize(geo, tmp_path / "g.gpkg", mmu_ha=1, client=client)
    df = read(vectorize(geo, tmp_path / "g.gpkg", block=100, client=client))
    assert df["area_ha"].sum() == pytest.approx((arr != 0).sum() * 11.1 * 8.9 / 1e4, rel=0.05)
    (tmp_path / "exists.gpkg").write_text("")
    with pytest.raises(GeoSegError, match="--overwrite"):
        vectorize(path, tmp_path / "exists.gpkg", client=client)
    with pytest.raises(GeoSegError, match="format"):
        vectorize(path, tmp_path / "x.gpkg", fmt="kml", client=client)
    nocrs = write_classes(tmp_path / "nocrs.tif", arr[:64, :64], crs=None)
    with pytest.warns(UserWarning, match="no CRS"):
        df = read(vectorize(nocrs, tmp_path / "n.gpkg", client=client))
    assert shapely.area(df.geometry.values).sum() == (arr[:64, :64] != 0).sum()

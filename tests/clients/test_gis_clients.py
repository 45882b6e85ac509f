"""Every product of the demo and change workflows opened as a GIS user opens it: GDAL's own
command-line tools (Debian's gdal-bin) and QGIS headless (Debian's qgis + python3-qgis, run by
the system Python through ``qgis_probe.py``). Each client skips cleanly where it is absent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from PIL import Image
from rio_cogeo.cogeo import cog_validate

from geoseg.accuracy.sample import sample
from geoseg.vector.vectorize import vectorize
from geoseg.workflow.runner import run

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SYSTEM_PYTHON = "/usr/bin/python3"
NC_EPSG = "EPSG:32119"  # the NC scene's unnamed CRS, written with its code


def _has_qgis() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True)
    return r.returncode == 0


needs_gdal = pytest.mark.skipif(
    not (shutil.which("gdalinfo") and shutil.which("ogr2ogr")), reason="needs Debian's gdal-bin"
)
needs_qgis = pytest.mark.skipif(not _has_qgis(), reason="needs Debian's qgis and python3-qgis")


@pytest.fixture(scope="module")
def products(client, tmp_path_factory) -> dict[str, list[dict]]:
    """Run both workflows, write the other vector formats and a sample; list every product."""
    d = tmp_path_factory.mktemp("clients")
    demo, chg = d / "demo", d / "change"
    run(ROOT / "workflows" / "landcover.yaml", out=demo, client=client)
    run(ROOT / "workflows" / "change.yaml", out=chg, client=client)
    cmap = demo / "landcover.tif"
    for fmt in ("parquet", "fgb", "geojson"):
        vectorize(cmap, demo / f"landcover_polygons.{fmt}", mmu_ha=0.5, client=client)
    sample(cmap, demo / "sample.gpkg", n=70, min_per_class=10, client=client)
    after = chg / "landcover_2000.tif"
    rasters = [
        {"path": cmap, "classes": True},
        {"path": demo / "landcover_probabilities.tif"},
        {"path": demo / "landcover_confidence.tif"},
        {"path": after, "classes": True},
        {"path": after.with_name("landcover_2000_probabilities.tif")},
        {"path": after.with_name("landcover_2000_confidence.tif")},
        {"path": chg / "change" / "change_fromto.tif", "classes": True},
        {"path": chg / "change" / "change_mask.tif", "classes": True},
    ]
    vectors = [
        {"path": demo / "landcover_polygons.gpkg", "layer": "landcover_polygons"},
        {"path": demo / "landcover_polygons.shp"},
        {"path": demo / "landcover_polygons.fgb"},
        {"path": demo / "landcover_polygons.geojson", "crs": "EPSG:4326"},
        {"path": demo / "landcover_polygons.parquet", "parquet": True},
        {"path": demo / "sample.gpkg", "layer": "points", "field": "map_class", "point": True},
        {"path": chg / "change" / "change_polygons.gpkg", "layer": "change_polygons"},
    ]
    for p in rasters + vectors:
        assert p["path"].exists(), p["path"]
    return {"rasters": rasters, "vectors": vectors}


def _cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run(list(args), capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", f"{' '.join(args)}: {r.stderr}"
    return r


def _features(path: Path, layer: str | None = None) -> int:
    return int(pyogrio.read_info(path, layer=layer)["features"])


def _category_names(path: Path) -> dict[int, str]:
    aux = Path(f"{path}.aux.xml")
    cats = [c.text or "" for c in ET.parse(aux).iter("Category")]
    return {i: n for i, n in enumerate(cats) if n}


def _qml_palette(path: Path) -> list[dict]:
    return [
        {"value": int(e.get("value")), "label": e.get("label"), "color": e.get("color").lower()}
        for e in ET.parse(path.with_suffix(".qml")).iter("paletteEntry")
    ]


@needs_gdal
def test_gdal_opens_every_raster_quietly_with_an_epsg_code(products):
    for item in products["rasters"]:
        path = item["path"]
        info = json.loads(_cli("gdalinfo", "-json", "-noct", str(path)).stdout)
        wkt = info["coordinateSystem"]["wkt"]
        assert 'ID["EPSG",32119]' in wkt.replace(" ", "") and "unnamed" not in wkt, path
        ok, errors, warnings = cog_validate(str(path))
        assert ok and not errors and not warnings, (path, errors, warnings)
        if item.get("classes"):
            band = info["bands"][0]
            assert band["colorInterpretation"] == "Palette", path
            names = _category_names(path)
            assert all(band["categories"][i] == n for i, n in names.items()), path


@needs_gdal
def test_every_vector_layer_reprojects_with_ogr2ogr(products, tmp_path):
    has_parquet = "Parquet" in _cli("ogrinfo", "--formats").stdout
    for item in products["vectors"]:
        path, layer = item["path"], item.get("layer")
        n = _features(path, layer) if not item.get("parquet") else None
        if item.get("parquet"):
            import geopandas as gpd

            df = gpd.read_parquet(path)
            assert df.crs.to_epsg() == 32119
            assert len(df.to_crs(3857)) == len(df) > 0
            if not has_parquet:  # Debian's GDAL 3.6 has no Parquet driver; 3.8+ do
                continue
            n = len(df)
        args = ["ogrinfo", "-so", str(path)] + ([layer] if layer else ["-al"])
        described = _cli(*args).stdout
        assert item.get("crs", NC_EPSG).split(":")[1] in described, path
        merc = tmp_path / f"{path.stem}_{path.suffix[1:]}_3857.gpkg"
        _cli("ogr2ogr", "-t_srs", "EPSG:3857", str(merc), str(path), *([layer] if layer else []))
        assert _features(merc) == n > 0, path


def _all_null(path: Path, field: str) -> bool:
    df = pyogrio.read_dataframe(path, read_geometry=False, columns=[field])
    return bool(df[field].isna().all())


def _probe(layers: list[dict], tmp_path: Path) -> list[dict]:
    spec = tmp_path / "layers.json"
    spec.write_text(json.dumps(layers))
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run(
        [SYSTEM_PYTHON, str(Path(__file__).with_name("qgis_probe.py")), str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", r.stderr  # no warning of QGIS, Qt or GDAL
    return json.loads(r.stdout)


@needs_qgis
def test_qgis_opens_every_product_with_its_own_style(products, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "qgis_landcover.png"
    rasters = products["rasters"]
    # QGIS 3.22's GDAL 3.6 has no Parquet driver: the GeoParquet is checked with GDAL's CLI
    vectors = [v for v in products["vectors"] if not v.get("parquet")]
    layers = [
        {"path": str(r["path"]), "kind": "raster", **({"render": str(png)} if i == 0 else {})}
        for i, r in enumerate(rasters)
    ] + [{"path": str(v["path"]), "kind": "vector", "layer": v.get("layer")} for v in vectors]
    seen = _probe(layers, tmp_path)
    for item, got in zip(rasters, seen[: len(rasters)], strict=True):
        path = item["path"]
        assert got["valid"] and got["messages"] == [], (path, got["messages"])
        assert got["crs"] == NC_EPSG, (path, got["crs"])
        if not item.get("classes"):
            continue
        # the legend lists exactly the classes, with the colours and names of the style
        palette = _qml_palette(path)
        assert got["renderer"] == "paletted", path
        assert got["classes"] == palette, path
        assert got["legend"] == [p["label"] for p in palette], path
        assert {p["value"]: p["label"] for p in palette}.items() <= _category_names(path).items()
    for item, got in zip(vectors, seen[len(rasters) :], strict=True):
        path = item["path"]
        assert got["valid"] and got["messages"] == [], (path, got["messages"])
        assert got["crs"] == item.get("crs", NC_EPSG), (path, got["crs"])
        assert got["features"] == _features(path, item.get("layer")) > 0, path
        assert got["renderer"] == "categorizedSymbol", path
        field = item.get("field", "code" if "change" in path.name else "class_id")
        assert got["attribute"] == field, path
        kinds = {c["symbol"] for c in got["categories"]}
        assert kinds == ({"SimpleMarker"} if item.get("point") else {"SimpleFill"}), path
        values = pyogrio.read_dataframe(path, layer=item.get("layer"), read_geometry=False)[field]
        assert {str(v) for v in values.unique()} <= {c["value"] for c in got["categories"]}
        # dates are dates (FlatGeobuf has only date-times); a GeoJSON whose dates are all
        # unknown (null) carries no type at all, and readers take strings
        for key in {"date", "date_from", "date_to"} & set(got["fields"]):
            date = "DateTime" if path.suffix == ".fgb" else "Date"
            if path.suffix == ".geojson" and _all_null(path, key):
                date = "String"
            assert got["fields"][key] == date, (path, key)

    # the rendered class map: class colours only (no black for codes without a class)
    with rasterio.open(rasters[0]["path"]) as src:
        classes = json.loads(src.tags(1)["CLASSES"])
    colours = {tuple(int(c["color"][i : i + 2], 16) for i in (1, 3, 5)) for c in classes}
    rgb = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    found = {tuple(int(v) for v in c) for c in np.unique(rgb, axis=0)}
    assert found <= colours | {(255, 255, 255)}, found - colours
    assert len(found & colours) >= 5

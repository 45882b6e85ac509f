"""STAC in and out, offline: an Item's assets stacked as the scene; an Item beside every raster
product, valid against STAC's core schema (shipped with pystac) and read back by pystac's
extension classes; a workflow's Collection."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from jsonschema import Draft7Validator
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource

from geoseg import predict
from geoseg.errors import GeoSegError

BIN = Path(sys.executable).parent
BANDS = ["blue", "green", "red", "nir"]


def validate_core(doc: dict, kind: str = "item") -> None:
    """STAC 1.1 core schema validation with the schemas pystac ships (no network)."""
    cache = get_local_schema_cache()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in cache.items()
    )
    uri = next(u for u in cache if u.endswith(f"{kind}-spec/json-schema/{kind}.json"))
    errors = list(Draft7Validator(cache[uri], registry=registry).iter_errors(doc))
    assert not errors, [e.message for e in errors]


@pytest.fixture(scope="module")
def catalog(synth, tmp_path_factory):
    """A local catalog: one Item whose four assets are single-band COGs of a synthetic scene."""
    d = tmp_path_factory.mktemp("stac")
    scene, _ = synth(260, 300, seed=81)
    with rasterio.open(scene) as src:
        prof = src.profile | {"count": 1, "driver": "GTiff"}
        for i, name in enumerate(BANDS, 1):
            with rasterio.open(d / f"{name}.tif", "w", **prof) as dst:
                dst.write(src.read(i), 1)
        crs = src.crs
    item = pystac.Item(
        id="scene-2021-06-01",
        geometry=None,
        bbox=None,
        datetime=dt.datetime(2021, 6, 1, 10, 30, tzinfo=dt.UTC),
        properties={},
    )
    for name in BANDS:
        item.add_asset(
            name, pystac.Asset(href=f"./{name}.tif", media_type=pystac.MediaType.GEOTIFF)
        )
    cat = pystac.Catalog(id="local", description="test catalog")
    cat.add_item(item)
    cat.normalize_and_save(str(d / "catalog"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    for name in BANDS:  # the assets beside the item, where its relative hrefs point
        (d / f"{name}.tif").rename(d / "catalog" / item.id / f"{name}.tif")
    return {"item": d / "catalog" / item.id / f"{item.id}.json", "scene": scene, "crs": crs}


def test_stac_item_assets_are_the_scene(catalog, bundles, client, tmp_path):
    model = bundles("pixelnet", tile=64, overlap=16)
    ref = predict(catalog["scene"], model, tmp_path / "ref.tif", client=client)
    out = tmp_path / "from_item.tif"
    r = subprocess.run(
        [str(BIN / "geoseg"), "predict", str(catalog["item"]), "--assets", ",".join(BANDS),
         "--model", str(model), "--out", str(out), "--workers", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with rasterio.open(out) as a, rasterio.open(ref.path) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert a.tags()["GEOSEG_DATE"] == "2021-06-01"  # the Item's datetime
    with pytest.raises(GeoSegError, match="has no asset swir"):
        predict(catalog["item"], model, tmp_path / "x.tif", assets=["red", "swir"], client=client)
    with pytest.raises(GeoSegError, match="--assets"):
        predict(catalog["item"], model, tmp_path / "x.tif", client=client)
    with pytest.raises(GeoSegError, match="assets of a STAC Item"):
        predict(catalog["scene"], model, tmp_path / "x.tif", assets=["red"], client=client)
    with pytest.raises(GeoSegError, match="does not exist"):
        predict(tmp_path / "nowhere.json", model, tmp_path / "x.tif", client=client)
    assert not (tmp_path / "x.tif").exists()


def test_every_raster_product_has_a_valid_item(catalog, bundles, client, tmp_path):
    model = bundles("pixelnet", tile=64, overlap=16)
    res = predict(
        catalog["item"], model, tmp_path / "lc.tif", assets=BANDS, probabilities=True,
        client=client,
    )  # fmt: skip
    for key, path in res.outputs.items():
        path = Path(path)
        item_file = path.with_name(path.stem + ".stac.json")
        doc = json.loads(item_file.read_text())
        validate_core(doc)
        item = pystac.Item.from_file(str(item_file))
        assert item.datetime.date().isoformat() == "2021-06-01"
        asset = item.assets["data"]
        assert Path(asset.get_absolute_href()) == path.resolve()
        with rasterio.open(path) as src:
            proj = ProjectionExtension.ext(item)
            assert proj.epsg == src.crs.to_epsg() and proj.shape == list(src.shape)
            assert proj.transform == list(src.transform)[:6]
            bands = RasterExtension.ext(asset).bands
            assert [b.nodata for b in bands] == list(src.nodatavals)
            assert [str(getattr(b.data_type, "value", b.data_type)) for b in bands] == list(
                src.dtypes
            )
            tags = src.tags(1)
        f = FileExtension.ext(asset)
        assert f.size == path.stat().st_size
        assert f.checksum == "1220" + hashlib.sha256(path.read_bytes()).hexdigest()
        if key == "classes":
            classes = json.loads(tags["CLASSES"])
            got = ClassificationExtension.ext(asset).classes
            assert [(c.value, c.name, "#" + c.color_hint.lower()) for c in got if not c.nodata] == [
                (c["id"], c["name"], c["color"].lower()) for c in classes
            ]
        derived = [ln for ln in item.links if ln.rel == "derived_from"]
        assert len(derived) == 4 and all(Path(ln.get_absolute_href()).exists() for ln in derived)


def test_workflow_writes_a_collection_of_its_items(client, tmp_path):
    from geoseg.workflow.runner import run

    root = Path(__file__).resolve().parents[2]
    res = run(root / "workflows" / "landcover.yaml", out=tmp_path / "wf", client=client)
    coll_file = res.output / "collection.json"
    doc = json.loads(coll_file.read_text())
    validate_core(doc, "collection")
    coll = pystac.Collection.from_file(str(coll_file))
    items = list(coll.get_items())
    assert {i.id for i in items} == {"landcover", "landcover_probabilities", "landcover_confidence"}
    for i in items:
        validate_core(i.to_dict(include_self_link=False))
        assert i.collection_id == coll.id

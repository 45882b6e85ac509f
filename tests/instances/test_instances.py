"""geoseg instances on a real cluster: ids equal a whole-scene labelling for any block size,
one polygon per instance re-read with pyogrio, counts, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

from geoseg.core.instances import label_scene
from geoseg.errors import GeoSegError
from geoseg.instances.label import instances
from geoseg.io.stac import item_path
from tests.vector.test_vectorize import speckle, write_classes


@pytest.fixture(scope="module")
def cmap(tmp_path_factory):
    arr = speckle(300, 420, seed=3)
    return write_classes(tmp_path_factory.mktemp("inst") / "map.tif", arr), arr


@pytest.mark.parametrize("conn", [4, 8])
def test_ids_equal_whole_scene_for_any_block(cmap, client, tmp_path, conn):
    path, arr = cmap
    whole = label_scene(arr, [3], conn)
    for block in (64, 128, 1024):
        out = tmp_path / f"ids_{block}.tif"
        res = instances(
            path, out, things=["Built-up"], connectivity=conn, block=block, client=client
        )
        with rasterio.open(out) as src:
            ids = src.read(1)
            assert src.dtypes[0] == "uint32" and src.nodata == 0
            assert json.loads(src.tags()["GEOSEG_INSTANCE_COUNTS"]) == {
                "Built-up": int(whole.max())
            }
        assert np.array_equal(ids, whole), block
        assert res.blocks > 1 or block == 1024
        assert res.counts == {"Built-up": int(whole.max())}


def test_a_border_head_splits_objects_alike_for_any_block(cmap, client, tmp_path):
    from geoseg.core.instances import border_mask

    _, arr = cmap
    path = write_classes(tmp_path / "map.tif", arr)
    h, w = arr.shape
    rr, cc = np.mgrid[:h, :w]
    head = np.where((rr % 17 < 2) | (cc % 23 == 0), 254, 3).astype(np.uint8)
    with rasterio.open(path) as src:
        prof = {**src.profile, "nodata": 255}
    with rasterio.open(tmp_path / "map_boundary.tif", "w", **prof) as dst:
        dst.write(head, 1)
    border = border_mask(head, 0.5) & (arr == 3)
    whole = label_scene(arr, [3], 4, border=border, steps=3)
    assert whole.max() > label_scene(arr, [3], 4).max()  # the border split objects
    for block in (64, 96, 1024):
        out = tmp_path / f"split_{block}.tif"
        res = instances(path, out, things=["Built-up"], block=block, client=client)
        with rasterio.open(out) as src:
            assert np.array_equal(src.read(1), whole), block
            assert json.loads(src.tags()["GEOSEG_INSTANCE_SPLIT"])["grow"] == 3
        assert np.array_equal(res.per_instance["area"], np.bincount(whole.ravel())[1:])
    res = instances(
        path, tmp_path / "nosplit.tif", things=["Built-up"], split=False, block=64, client=client
    )
    assert res.total == label_scene(arr, [3], 4).max()


def test_polygons_one_per_instance(cmap, client, tmp_path):
    path, arr = cmap
    whole = label_scene(arr, [1, 3], 4)
    gpkg = tmp_path / "inst.gpkg"
    res = instances(
        path, tmp_path / "ids.tif", things=["1", "Built-up"], polygons=gpkg, block=64, client=client
    )
    df = pyogrio.read_dataframe(gpkg, layer="inst")
    assert len(df) == whole.max() == res.total
    assert sorted(df["instance_id"]) == list(range(1, whole.max() + 1))
    px = np.bincount(whole.ravel())[1:]
    got = df.sort_values("instance_id")
    assert np.array_equal(got["pixels"].to_numpy(), px)
    # each polygon's area is its pixels' (10 m pixels: 0.01 ha each), cut by blocks or not
    assert np.allclose(got["area_ha"].to_numpy(), px * 0.01)
    assert set(got["class_name"]) == {"Water", "Built-up"}
    assert shapely.is_valid(got.geometry.values).all()
    summary = json.loads((tmp_path / "ids.json").read_text())
    assert summary["count"] == res.total and summary["area_unit"] == "ha"
    item = json.loads(item_path(res.path).read_text())
    assert item["properties"]["geoseg:instance_counts"] == res.counts


def test_no_things_is_one_line(cmap, client, tmp_path):
    path, _ = cmap
    with pytest.raises(GeoSegError, match="marks no class as a thing"):
        instances(path, tmp_path / "x.tif", client=client)
    with pytest.raises(GeoSegError, match="unknown class 'roof'"):
        instances(path, tmp_path / "x.tif", things=["roof"], client=client)
    assert not (tmp_path / "x.tif").exists()

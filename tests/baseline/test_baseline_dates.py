"""A baseline's map carries the scene's acquisition date as geoseg predict's does
(GEOSEG_DATE), so vectorize, change and the STAC Item read it the same way."""

from __future__ import annotations

import numpy as np
import rasterio

from geoseg.baseline.otsu import run_otsu


def _scene(path):
    rng = np.random.default_rng(3)
    water = np.zeros((64, 80), bool)
    water[10:40, 20:60] = True
    green = np.where(water, 900, 600) + rng.normal(0, 40, water.shape)
    nir = np.where(water, 300, 1800) + rng.normal(0, 80, water.shape)
    prof = dict(
        driver="GTiff", height=64, width=80, count=2, dtype="uint16", crs="EPSG:32612",
        transform=rasterio.transform.from_origin(0, 640, 10, 10),
    )  # fmt: skip
    with rasterio.open(path, "w", **prof) as d:
        d.write(np.stack([green, nir]).astype(np.uint16))
    return path


def test_otsu_map_carries_the_scene_date(client, tmp_path):
    dated = _scene(tmp_path / "S2_20190701.tif")
    res = run_otsu(dated, tmp_path / "otsu.tif", bands="green=1,nir=2", block=64, client=client)
    with rasterio.open(res.map_path) as s:
        tags = s.tags()
    assert tags["GEOSEG_DATE"] == "2019-07-01" and tags["GEOSEG_SOURCE"] == str(dated)
    assert tags["GEOSEG_METHOD"] == "otsu"
    undated = _scene(tmp_path / "scene.tif")
    res = run_otsu(undated, tmp_path / "o2.tif", bands="green=1,nir=2", block=64, client=client)
    with rasterio.open(res.map_path) as s:
        assert "GEOSEG_DATE" not in s.tags() and s.tags()["GEOSEG_SOURCE"] == str(undated)

"""Acquisition dates from metadata and names, never from the file's modification time."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyogrio
import pytest
import rasterio

from geoseg.engine.predict import predict
from geoseg.errors import GeoSegError
from geoseg.io.dates import acquisition_date, check_date, parse_date
from geoseg.vector.vectorize import vectorize


@pytest.mark.parametrize(
    "text, want",
    [
        ("naip_2009-08-18.tif", "2009-08-18"),
        ("S2A_MSIL2A_20200831T101031_N0214.tif", "2020-08-31"),
        ("LC08_L2SP_038034_20150818_20200908_02_T1.tif", "2015-08-18"),
        ("2015:08:18 10:31:00", "2015-08-18"),
        ("lsat7_2000_10.tif", None),  # a year and a band are no date
        ("scene_20151399.tif", None),  # not a calendar date
    ],
)
def test_dates_in_text(text, want):
    assert parse_date(text) == want


def _raster(path, **tags):
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as d:
        d.write(np.ones((1, 8, 8), np.uint8))
        imagery = tags.pop("imagery", None)
        d.update_tags(**tags)
        if imagery:
            d.update_tags(ns="IMAGERY", ACQUISITIONDATETIME=imagery)
    return path


def test_order_metadata_then_name_then_file_write_time(tmp_path):
    p = _raster(tmp_path / "x_2001-01-01.tif", TIFFTAG_DATETIME="2026:12:01 10:00:00")
    assert acquisition_date(p) == "2001-01-01"  # the name beats TIFFTAG_DATETIME
    q = _raster(tmp_path / "y_2001-01-01.tif", imagery="2015-08-18T17:50:00Z")
    assert acquisition_date(q) == "2015-08-18"  # an acquisition field beats the name
    assert acquisition_date(q, name_first=True) == "2001-01-01"
    r = _raster(tmp_path / "z.tif", TIFFTAG_DATETIME="2014:05:06 10:00:00")
    assert acquisition_date(r) == "2014-05-06"  # the last resort
    assert acquisition_date(_raster(tmp_path / "none.tif")) is None
    assert acquisition_date(r, "2020-02-29") == "2020-02-29"
    with pytest.raises(GeoSegError, match="is not YYYY-MM-DD"):
        check_date("29/02/2020")


def test_predicted_map_and_polygons_carry_the_scenes_date(client, synth, bundles, tmp_path):
    import shutil

    scene, _ = synth(120, 140, seed=71)
    dated = tmp_path / "scene_2015-08-18.tif"
    shutil.copy(scene, dated)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    res = predict(dated, bundle, tmp_path / "map.tif", client=client)
    with rasterio.open(res.path) as s:
        assert s.tags()["GEOSEG_DATE"] == "2015-08-18"
    gpkg = vectorize(res.path, tmp_path / "map.gpkg", client=client)
    assert set(pyogrio.read_dataframe(gpkg)["date"].astype(str)) == {"2015-08-18"}  # a date

    # an undated scene: the map has no date, and the polygons' date is empty, not today
    plain = predict(scene, bundle, tmp_path / "plain.tif", client=client)
    with rasterio.open(plain.path) as s:
        assert "GEOSEG_DATE" not in s.tags()
    df = pyogrio.read_dataframe(vectorize(plain.path, tmp_path / "plain.gpkg", client=client))
    assert df["date"].isna().all()
    assert dt.date.today().isoformat() not in set(df["date"].dropna())

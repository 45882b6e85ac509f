"""The Pangeo path: geoseg.xarray.predict equals `geoseg predict` to the pixel for any input
chunking and worker count; Zarr stores read back by rioxarray and GDAL; geoseg.xarray.open."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import rasterio
import rioxarray
from distributed import Client, LocalCluster

import geoseg
import geoseg.xarray as gx
from geoseg import predict
from geoseg.errors import GeoSegError


@pytest.fixture(scope="module")
def scene_and_map(client, synth, bundles, tmp_path_factory):
    d = tmp_path_factory.mktemp("xr")
    scene, _ = synth(300, 410, seed=61, nodata_fraction=0.05)
    model = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    res = predict(scene, model, d / "map.tif", block=192, probabilities=True, client=client)
    with rasterio.open(res.path) as src:
        ref = src.read(1)
    with rasterio.open(res.outputs["probs"]) as src:
        ref_probs = src.read()
    return {"scene": scene, "model": model, "ref": ref, "ref_probs": ref_probs, "dir": d}


@pytest.mark.parametrize("chunks", [None, {"band": 1, "y": 97, "x": 131}, {"y": 300, "x": 64}])
def test_equals_the_file_path_for_any_chunking(client, scene_and_map, chunks):
    s = scene_and_map
    data = rioxarray.open_rasterio(s["scene"], chunks=chunks)
    if chunks is None:
        data = data.load()  # numpy-backed
    out = gx.predict(data, s["model"], block=192, client=client)
    assert out.chunks is not None  # lazy and dask-backed
    got = client.compute(out).result()
    np.testing.assert_array_equal(got.values, s["ref"])
    assert got.rio.crs == data.rio.crs and got.rio.transform() == data.rio.transform()
    assert json.loads(got.attrs["classes"])[0]["id"] == got.attrs["flag_values"][0]
    assert got.rio.nodata == got.attrs["nodata"]


def test_one_worker_other_block_size_and_probabilities(scene_and_map):
    s = scene_and_map
    data = rioxarray.open_rasterio(s["scene"], chunks={"y": 150, "x": 150})
    one = dict(n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    with LocalCluster(**one) as lc, Client(lc) as c:
        cls, probs = gx.predict(data, s["model"], block=256, probabilities=True, client=c)
        got, p = c.compute([cls, probs], sync=True)
    np.testing.assert_array_equal(got.values, s["ref"])  # bit-identical for any block size
    np.testing.assert_array_equal(p.values, s["ref_probs"])
    assert p.dims == ("class", "y", "x") and list(p["class"].values)


def test_plain_coordinates_and_errors(client, scene_and_map, tmp_path):
    s = scene_and_map
    data = rioxarray.open_rasterio(s["scene"]).load()
    plain = data.drop_vars("spatial_ref")  # x/y coordinates only, no .rio CRS
    plain.attrs = {"_FillValue": data.rio.nodata}
    got = gx.predict(plain, s["model"], block=192, client=client).compute()
    np.testing.assert_array_equal(got.values, s["ref"])
    assert got.rio.transform() == data.rio.transform()
    with pytest.raises(GeoSegError, match="reads bands"):
        gx.predict(data.isel(band=[0]), s["model"], client=client)
    with pytest.raises(GeoSegError, match="DataArray"):
        gx.predict(data.values, s["model"], client=client)
    assert got.rio.crs is None  # none given: none invented
    out = tmp_path / "via_rio.tif"
    gx.predict(data, s["model"], block=192, client=client).rio.to_raster(out)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(1), s["ref"])
        assert src.crs == data.rio.crs and src.transform == data.rio.transform()
        assert src.nodata == got.attrs["nodata"]


def test_the_lazy_result_writes_to_zarr_with_xarray(client, bundles, synth, tmp_path):
    """A last block reaching beyond the block size (404 = 2 x 192 + 20 rows) still gives
    Zarr-compatible chunks: ``to_zarr`` writes it chunk by chunk, and it reads back equal."""
    import xarray as xr

    scene, _ = synth(404, 213, seed=62)
    model = bundles("pixelnet", tile=128, overlap=32)
    ref = predict(scene, model, tmp_path / "ref.tif", block=192, client=client)
    lc = gx.predict(rioxarray.open_rasterio(scene, chunks=100), model, block=192, client=client)
    assert lc.chunks == ((192, 192, 20), (192, 21))
    client.compute(lc.to_dataset().to_zarr(tmp_path / "lc.zarr", compute=False)).result()
    back = xr.open_zarr(tmp_path / "lc.zarr", decode_coords="all", mask_and_scale=False)
    with rasterio.open(ref.path) as src:
        np.testing.assert_array_equal(back["classes"].values, src.read(1))
        assert back["classes"].rio.crs == src.crs


def test_zarr_output_read_back_by_rioxarray_and_gdal(client, scene_and_map, tmp_path):
    s = scene_and_map
    out = tmp_path / "map.zarr"
    res = predict(s["scene"], s["model"], out, block=192, probabilities=True, client=client)
    assert res.path == str(out) and not list(tmp_path.glob(".map.zarr*"))
    da = gx.open(out)
    np.testing.assert_array_equal(da.values, s["ref"])
    with rasterio.open(s["scene"]) as src:
        assert da.rio.crs == src.crs and da.rio.transform() == src.transform
    assert da.attrs["flag_meanings"].split() and da.attrs["GEOSEG_RUNTIME"]
    if (
        shutil.which("gdalinfo")
        and "Zarr"
        in subprocess.run(["gdalinfo", "--formats"], capture_output=True, text=True).stdout
    ):
        r = subprocess.run(
            ["gdalinfo", "-json", f'ZARR:"{out}":/classes'], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        with rasterio.open(s["scene"]) as src:
            t = src.transform
        assert info["geoTransform"] == pytest.approx([t.c, t.a, t.b, t.f, t.d, t.e])
        assert "ID[" in info["coordinateSystem"]["wkt"]
    with pytest.raises(GeoSegError, match="--overwrite"):
        predict(s["scene"], s["model"], out, block=192, client=client)


def test_open_a_cog_for_areas_per_class(scene_and_map):
    s = scene_and_map
    lc = geoseg.open(s["dir"] / "map.tif")
    assert lc.chunks is not None and lc.dtype == np.uint8
    np.testing.assert_array_equal(lc.values, s["ref"])
    px_ha = abs(lc.rio.resolution()[0] * lc.rio.resolution()[1]) / 1e4
    named = list(zip(lc.attrs["flag_values"], lc.attrs["flag_meanings"].split(), strict=True))
    areas = {n: float((lc == v).sum()) * px_ha for v, n in named}
    expect = {n: float((s["ref"] == v).sum()) * px_ha for v, n in named}
    assert areas == expect and sum(areas.values()) > 0


@pytest.mark.parametrize("chunks", [{"y": 77, "x": 101}, {"y": 300, "x": 410}])
def test_instances_equal_the_file_path_for_any_chunking(client, scene_and_map, chunks):
    from geoseg.instances import instances

    s = scene_and_map
    ids, n = np.unique(s["ref"], return_counts=True)
    thing = str(int(ids[np.argmax(n)]))  # the untrained model's commonest class
    res = instances(
        s["dir"] / "map.tif", s["dir"] / "ids.tif", things=[thing], block=64,
        client=client, overwrite=True,
    )  # fmt: skip
    with rasterio.open(res.path) as src:
        want = src.read(1)
    cmap = gx.open(s["dir"] / "map.tif").chunk(chunks)
    got = gx.instances(cmap, things=[thing])
    assert got.chunks is not None and got.dtype == np.uint32
    np.testing.assert_array_equal(client.compute(got).result().values, want)
    assert want.max() > 1
    with pytest.raises(GeoSegError, match="no class is a thing"):
        gx.instances(cmap)

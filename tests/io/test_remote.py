"""Remote storage against moto's S3 server on 127.0.0.1: scenes read with GDAL's /vsis3/ (on
the Dask workers), products uploaded with fsspec, a COG read by HTTP range requests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

pytest.importorskip("moto", reason="moto[server] not installed (pip install -e '.[dev]')")
pytest.importorskip("s3fs", reason="s3fs not installed (pip install -e '.[remote]')")
boto3 = pytest.importorskip("boto3")

from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from geoseg.engine.predict import predict  # noqa: E402
from geoseg.errors import GeoSegError  # noqa: E402
from geoseg.io import remote  # noqa: E402

BUCKET = "geoseg"


class _RequestLog:
    """WSGI middleware in front of moto: method, key, Range header and body bytes sent."""

    def __init__(self, app):
        self.app, self.requests, self.lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):
        rec = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "range": environ.get("HTTP_RANGE"),
            "bytes": 0,
        }
        with self.lock:
            self.requests.append(rec)
        for chunk in self.app(environ, start_response):
            rec["bytes"] += len(chunk)
            yield chunk

    def gets(self, key: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == "GET" and r["path"].endswith(key)]


@pytest.fixture(scope="module")
def s3(client):
    """moto's S3 server on 127.0.0.1, the AWS/GDAL variables set here and on the session's
    Dask workers (a cluster started now would inherit them from os.environ)."""
    log = _RequestLog(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, log, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_S3_ENDPOINT": f"127.0.0.1:{port}",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    saved = {
        k: os.environ.get(k)
        for k in [*env, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"]
    }
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        os.environ.pop(k, None)
    os.environ.update(env)
    client.run(lambda e: os.environ.update(e), env)  # (a bound method would copy environ)
    s3c = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    s3c.create_bucket(Bucket=BUCKET)
    try:
        yield SimpleNamespace(client=s3c, log=log, env=env)
    finally:
        client.run(lambda keys: [os.environ.pop(k, None) for k in keys], list(env))
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.shutdown()


def _keys(s3, prefix: str) -> list[str]:
    r = s3.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in r.get("Contents", []))


def _read_s3(s3, key: str, tmp: Path) -> np.ndarray:
    p = tmp / Path(key).name
    s3.client.download_file(BUCKET, key, str(p))
    with rasterio.open(p) as src:
        return src.read()


def _read(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def test_predict_reads_from_and_writes_to_s3(s3, client, synth, bundles, tmp_path):
    scene, _ = synth(300, 340, seed=71)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    s3.client.upload_file(str(scene), BUCKET, "in/scene.tif")
    local = predict(
        scene, bundle, tmp_path / "local.tif", block=128, client=client, probabilities=True
    )

    res = predict(
        f"/vsis3/{BUCKET}/in/scene.tif",
        bundle,
        f"s3://{BUCKET}/out/map.tif",
        block=128,
        client=client,
        probabilities=True,
    )
    assert res.path == f"s3://{BUCKET}/out/map.tif"
    assert res.outputs["probs"] == f"s3://{BUCKET}/out/map_probabilities.tif"
    assert _keys(s3, "out/") == [
        "out/map.qml",
        "out/map.stac.json",
        "out/map.tif",
        "out/map.tif.aux.xml",
        "out/map_confidence.stac.json",
        "out/map_confidence.tif",
        "out/map_probabilities.stac.json",
        "out/map_probabilities.tif",
    ]
    np.testing.assert_array_equal(_read_s3(s3, "out/map.tif", tmp_path), _read(local.path))
    np.testing.assert_array_equal(
        _read_s3(s3, "out/map_probabilities.tif", tmp_path), _read(local.outputs["probs"])
    )
    # the workers read the scene from the store (range requests), not from a local copy
    assert any(r["range"] for r in s3.log.gets("in/scene.tif"))

    with pytest.raises(GeoSegError, match="already exists: pass --overwrite"):
        predict(
            f"s3://{BUCKET}/in/scene.tif",
            bundle,
            f"/vsis3/{BUCKET}/out/map.tif",
            block=128,
            client=client,
        )
    res = predict(
        f"s3://{BUCKET}/in/scene.tif",
        bundle,
        f"/vsis3/{BUCKET}/out/map.tif",
        block=128,
        client=client,
        overwrite=True,
    )
    assert res.path == f"s3://{BUCKET}/out/map.tif"
    np.testing.assert_array_equal(_read_s3(s3, "out/map.tif", tmp_path), _read(local.path))
    assert not list(remote.default_staging_root().glob("*/b*.npz"))  # staging cleaned up


def test_upload_never_shows_a_partial_final_object(s3, tmp_path, monkeypatch):
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(300_000))
    fs, _ = remote.filesystem(f"s3://{BUCKET}/x")  # the cached instance upload() gets
    seen = {}
    copy = fs.copy

    def checked_copy(path1, path2, **kw):
        fs.invalidate_cache()
        seen["final_before_copy"] = fs.exists(path2)
        seen["tmp_key"] = path1
        return copy(path1, path2, **kw)

    monkeypatch.setattr(fs, "copy", checked_copy)
    url = remote.upload(src, f"s3://{BUCKET}/up/big.bin")
    assert url == f"s3://{BUCKET}/up/big.bin" and seen["final_before_copy"] is False
    assert Path(seen["tmp_key"]).name.startswith(".big.bin.part-")
    assert _keys(s3, "up/") == ["up/big.bin"]  # the temporary key is gone
    body = s3.client.get_object(Bucket=BUCKET, Key="up/big.bin")["Body"].read()
    assert body == src.read_bytes()

    def broken_copy(path1, path2, **kw):
        raise OSError("connection reset by peer")

    monkeypatch.setattr(fs, "copy", broken_copy)
    with pytest.raises(GeoSegError, match=r"cannot upload big\.bin to s3://geoseg/up/two\.bin"):
        remote.upload(src, f"s3://{BUCKET}/up/two.bin")
    assert _keys(s3, "up/") == ["up/big.bin"]  # neither a final nor a temporary object


def test_vectorize_writes_to_s3(s3, client, synth, bundles, tmp_path):
    from geoseg.vector.vectorize import vectorize

    scene, _ = synth(200, 220, seed=72)
    cmap = predict(
        scene, bundles("pixelnet", tile=64, overlap=16), tmp_path / "m.tif", client=client
    ).path
    url = vectorize(cmap, f"s3://{BUCKET}/vec/m.gpkg", client=client)
    assert url == f"s3://{BUCKET}/vec/m.gpkg"
    assert _keys(s3, "vec/") == ["vec/m.gpkg"]  # its style is inside
    local = vectorize(cmap, tmp_path / "m.gpkg", client=client)
    got = tmp_path / "got.gpkg"
    s3.client.download_file(BUCKET, "vec/m.gpkg", str(got))
    import pyogrio

    a, b = pyogrio.read_dataframe(got), pyogrio.read_dataframe(local)
    assert len(a) == len(b) > 0 and a.geometry.area.sum() == pytest.approx(b.geometry.area.sum())


def test_cog_read_by_range_requests(s3, tmp_path):
    """One window and one overview of a 2048 x 2048 class COG read from the store: GDAL asks
    for byte ranges, and far less than the file comes over the wire."""
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    from geoseg.core.classes import ClassList
    from geoseg.core.grid import Window as GWindow
    from geoseg.io.cog import CogWriter, RasterSpec

    n = 2048
    rng = np.random.default_rng(5)
    classes = ClassList(classes=[{"id": i, "name": f"c{i}"} for i in range(1, 6)])
    w = CogWriter(
        RasterSpec(
            height=n,
            width=n,
            count=1,
            crs="EPSG:32612",
            transform=rasterio.transform.from_origin(0, 0, 10, 10),
            nodata=0,
            classes=classes,
        ),
        tmp_path / "scratch",
        "cls",
    )
    for r in range(0, n, 512):
        w.write(GWindow(r, 0, 512, n), rng.integers(1, 6, size=(512, n), dtype=np.uint8))
    cog = w.finish(tmp_path / "classes.tif")
    s3.client.upload_file(str(cog), BUCKET, "cog/classes.tif")
    size = cog.stat().st_size

    s3.log.requests.clear()
    with rasterio.open(f"/vsis3/{BUCKET}/cog/classes.tif") as src:
        assert src.overviews(1)  # a real COG, with internal overviews
        window = src.read(1, window=Window(1024, 512, 256, 256))
        overview = src.read(1, out_shape=(n // 8, n // 8), resampling=Resampling.nearest)
    with rasterio.open(cog) as src:
        np.testing.assert_array_equal(window, src.read(1, window=Window(1024, 512, 256, 256)))
        np.testing.assert_array_equal(overview, src.read(1, out_shape=(n // 8, n // 8)))
    gets = s3.log.gets("cog/classes.tif")
    assert gets and all(r["range"] and r["range"].startswith("bytes=") for r in gets)
    fetched = sum(r["bytes"] for r in gets)
    assert fetched < 0.25 * size, (fetched, size)


def test_cli_predict_vsis3_to_s3_in_a_real_process(s3, client, synth, bundles, tmp_path):
    """``geoseg predict /vsis3/... --out s3://...`` as a user runs it (on the session's
    workers, which have the AWS variables, as the CLI's own local cluster would inherit them).
    """
    scene, _ = synth(150, 170, seed=73)
    s3.client.upload_file(str(scene), BUCKET, "cli/scene.tif")
    bundle = bundles("pixelnet", tile=64, overlap=16)
    out = f"s3://{BUCKET}/cli/map.tif"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "geoseg.cli.main",
            "predict",
            f"/vsis3/{BUCKET}/cli/scene.tif",
            "--model",
            str(bundle),
            "--out",
            out,
            "--scheduler",
            client.scheduler.address,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **s3.env},
    )
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    assert _keys(s3, "cli/") == [
        "cli/map.qml",
        "cli/map.stac.json",
        "cli/map.tif",
        "cli/map.tif.aux.xml",
        "cli/scene.tif",
    ]
    local = predict(scene, bundle, tmp_path / "local.tif", client=client)
    np.testing.assert_array_equal(_read_s3(s3, "cli/map.tif", tmp_path), _read(local.path))

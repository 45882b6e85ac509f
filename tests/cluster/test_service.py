"""``geoseg serve``: a real service process that later ``geoseg predict`` runs attach to (only
from its own folder), keeping each model loaded; --status, --stop and a second service."""

from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import pytest
import rasterio

from tests.conftest import BIN, CLASSES5


@pytest.fixture
def service(tmp_path):
    """A `geoseg serve --workers 1` started in tmp_path/work, with its own service file."""
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GEOSEG_NO_SERVICE"}
    env["GEOSEG_SERVICE_FILE"] = str(tmp_path / "service.json")
    proc = subprocess.Popen(
        [str(BIN / "geoseg"), "serve", "--workers", "1"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    path = tmp_path / "service.json"
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), proc.communicate(timeout=10)
    try:
        yield work, env, json.loads(path.read_text()), proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def _geoseg(args, cwd, env, check=True):
    r = subprocess.run(
        [str(BIN / "geoseg"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_commands_in_its_folder_attach_and_keep_the_model(service, synth, tmp_path):
    from distributed import Client

    from geoseg.model.factory import create_bundle

    def _n_predictors():  # a local function: sent by value to the service's worker
        from geoseg.engine import blocks

        return len(blocks._predictors)

    work, env, info, proc = service
    scene, _ = synth(200, 260, bands=3, n_classes=5, seed=11)
    (work / "scene.tif").symlink_to(scene)
    create_bundle(
        work / "model", classes=CLASSES5, bands=3, architecture="pixelnet", tile=64, overlap=16
    )
    status = _geoseg(["serve", "--status"], work, env)
    assert info["address"] in status.stdout and info["pid"] == proc.pid
    with Client(info["address"], timeout="20s") as c:
        assert list(c.run(_n_predictors).values()) == [0]
        # relative paths: the service's workers run in the same folder
        _geoseg(["predict", "scene.tif", "--model", "model", "-o", "a.tif"], work, env)
        assert list(c.run(_n_predictors).values()) == [1]  # ran there, model kept
        _geoseg(["predict", "scene.tif", "--model", "model", "-o", "b.tif"], work, env)
        assert list(c.run(_n_predictors).values()) == [1]  # reused, not loaded again
        # another folder starts its own cluster: the service's workers see nothing of it
        other = tmp_path / "other"
        other.mkdir()
        _geoseg(["predict", str(scene), "--model", str(work / "model"), "-o", "c.tif"], other, env)
        assert (other / "c.tif").exists()
        # so does --scheduler local, and an explicit worker count
        _geoseg(
            ["predict", "scene.tif", "--model", "model", "-o", "d.tif", "--scheduler", "local"],
            work,
            env,
        )
        assert list(c.run(_n_predictors).values()) == [1]
    with rasterio.open(work / "a.tif") as a, rasterio.open(work / "b.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))
    with rasterio.open(work / "a.tif") as a, rasterio.open(other / "c.tif") as c2:
        assert np.array_equal(a.read(1), c2.read(1))


def test_one_service_at_a_time_and_stop(service):
    work, env, info, proc = service
    second = _geoseg(["serve"], work, env, check=False)
    assert second.returncode != 0
    assert second.stderr.strip().count("\n") == 0  # one line
    assert "already runs" in second.stderr and str(info["pid"]) in second.stderr
    stopped = _geoseg(["serve", "--stop"], work, env)
    assert info["address"] in stopped.stdout
    assert proc.wait(timeout=60) == 0
    assert not (work.parent / "service.json").exists()
    gone = _geoseg(["serve", "--status"], work, env, check=False)
    assert gone.returncode == 1 and "no geoseg service runs" in gone.stdout

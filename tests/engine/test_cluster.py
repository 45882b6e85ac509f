"""A real `dask scheduler` and two `dask worker` processes on 127.0.0.1, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoseg.engine.predict import predict
from tests.conftest import predict_cmd

BIN = Path(sys.executable).parent


def _read(p):
    with rasterio.open(p) as s:
        return s.read(1)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    sf = d / "scheduler.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sf),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(300):
            if sf.exists() and sf.stat().st_size:
                break
            time.sleep(0.1)
        addr = json.loads(sf.read_text())["address"]
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        addr,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--memory-limit",
                        "4GB",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        yield addr
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_separate_scheduler_and_workers_give_identical_map(
    scheduler, client, synth, bundles, tmp_path
):
    scene, _ = synth(517, 643, seed=2)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    local = predict(scene, bundle, tmp_path / "local.tif", block=300, client=client)
    remote = predict(scene, bundle, tmp_path / "remote.tif", block=200, scheduler=scheduler)
    assert remote.blocks > local.blocks
    np.testing.assert_array_equal(_read(remote.path), _read(local.path))


def test_cli_predict_on_existing_scheduler(scheduler, synth, bundles, tmp_path):
    scene, _ = synth(300, 400, seed=9)
    bundle = bundles("pixelnet", tile=64, overlap=16)
    out = tmp_path / "cli.tif"
    r = subprocess.run(
        predict_cmd(
            scene, bundle, out, "--scheduler", scheduler, "--block", 128, "--probabilities"
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert out.exists() and (tmp_path / "cli_probabilities.tif").exists()
    assert "wrote" in r.stdout and "Mpx/s" in r.stdout
    # the same command again refuses to overwrite, in one line, and leaves the map alone
    before = out.read_bytes()
    r = subprocess.run(
        predict_cmd(scene, bundle, out, "--scheduler", scheduler),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--overwrite" in r.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"this is not a raster", "cannot read"),
        (b"II*\x00\x08\x00\x00\x00\x10\x00", "cannot read"),
    ],
)
def test_cli_bad_inputs_one_line_no_output(bundles, tmp_path, content, match):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(content)
    out = tmp_path / "out.tif"
    r = subprocess.run(
        [
            str(BIN / "geoseg"),
            "predict",
            str(bad),
            "--model",
            str(bundles("pixelnet")),
            "--out",
            str(out),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], r.stderr
    assert not out.exists()


def test_gpu_flag_falls_back_without_gpu(synth, bundles, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the fallback is not exercised")
    scene, _ = synth(100, 120, seed=10)
    with pytest.warns(UserWarning, match="--gpus"):
        res = predict(
            scene,
            bundles("pixelnet", tile=64, overlap=16),
            tmp_path / "g.tif",
            gpus=True,
            device="cpu",
            workers=1,
        )
    assert Path(res.path).exists()


@pytest.mark.gpu
def test_gpu_prediction_matches_cpu_classes(synth, bundles, tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    scene, _ = synth(600, 700, seed=11)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet18")
    gpu = predict(scene, bundle, tmp_path / "gpu.tif", gpus=True, amp="none")
    cpu = predict(scene, bundle, tmp_path / "cpu.tif", workers=1, device="cpu")
    assert (_read(gpu.path) == _read(cpu.path)).mean() > 0.999

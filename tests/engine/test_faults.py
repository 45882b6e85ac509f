"""Faults with real processes: workers killed mid-job, the whole job killed and re-run."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time

import numpy as np
import rasterio

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.engine.predict import predict
from tests.conftest import predict_cmd


def _read(p):
    with rasterio.open(p) as s:
        return s.read(1)


def test_sigkill_workers_mid_job_gives_identical_cog(synth, bundles, tmp_path):
    scene, _ = synth(768, 960, seed=21)  # 80 blocks of 96
    bundle = bundles("deeplabv3plus", tile=128, overlap=32)
    staging = tmp_path / "staging"
    with connect(ClusterOptions(workers=2)) as c:
        ref = predict(scene, bundle, tmp_path / "ref.tif", block=96, client=c)
        n_blocks = ref.blocks
        result: dict = {}

        def job():
            try:
                result["res"] = predict(
                    scene, bundle, tmp_path / "faulty.tif", block=96, client=c, staging=str(staging)
                )
            except BaseException as e:  # noqa: BLE001 - reported by the assertion below
                result["error"] = e

        t = threading.Thread(target=job)
        t.start()
        rng = random.Random(0)
        kills = 0
        # kill a random worker when about 10 %, 35 % and 60 % of the blocks are staged
        for frac in (0.10, 0.35, 0.60):
            while t.is_alive() and len(list(staging.glob("*/b*.npz"))) < frac * n_blocks:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
            pids = list(c.run(os.getpid).values())
            if pids and t.is_alive():
                os.kill(rng.choice(pids), signal.SIGKILL)
                kills += 1
        t.join(timeout=600)
    assert "error" not in result, result.get("error")
    assert kills >= 2
    np.testing.assert_array_equal(_read(result["res"].path), _read(ref.path))
    with open(result["res"].path, "rb") as a, open(ref.path, "rb") as b:
        assert a.read() == b.read()  # the COG file itself is bit-identical


def test_killed_job_resumes_reusing_finished_blocks(synth, bundles, tmp_path):
    scene, _ = synth(768, 960, seed=22)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32)
    staging = tmp_path / "staging"
    out = tmp_path / "map.tif"
    cmd = predict_cmd(scene, bundle, out, "--block", 96, "--workers", 2, "--staging", staging)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(staging.glob("*/b*.npz"))) < 30:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # client, scheduler, nannies and workers at once
    proc.wait()
    time.sleep(1)
    finished = len(list(staging.glob("*/b*.npz")))
    assert finished >= 30 and not out.exists()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    reused = int(re.search(r"(\d+)/\d+\s+blocks\s+reused", r.stdout).group(1))
    assert reused >= 0.9 * finished
    ref = predict(scene, bundle, tmp_path / "ref.tif", block=96, workers=2)
    np.testing.assert_array_equal(_read(out), _read(ref.path))

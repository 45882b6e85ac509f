"""Ctrl-C and blocks that crash their worker, in real `geoseg predict` processes: one line on
the terminal, the exit status a shell expects, finished blocks kept, no output appearing after
the command has returned, and a second run that resumes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import predict_cmd


def _cmd(scene, bundle, out, staging, block=96) -> list[str]:
    return predict_cmd(scene, bundle, out, "--block", block, "--workers", 2, "--staging", staging)


def _quiet(stderr: str) -> list[str]:
    """What stderr holds besides geoseg's own lines: Dask logs, tracebacks, warnings."""
    return [
        line
        for line in stderr.splitlines()
        if "Traceback" in line or "distributed." in line or "Error" in line.split(":")[0]
    ]


def _wait_for(cond, timeout=300.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not cond():
        time.sleep(0.1)
    assert cond(), "timed out"


def _ctrl_c(proc: subprocess.Popen) -> tuple[int, str]:
    """SIGINT to the whole process group, as a terminal's Ctrl-C does."""
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err.decode()


def _leftovers(folder: Path, stem: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith((stem, f".{stem}")))


def test_ctrl_c_while_blocks_run_says_how_to_resume(synth, bundles, tmp_path):
    scene, _ = synth(1024, 1280, seed=31)
    bundle = bundles("deeplabv3plus", tile=128, overlap=32, encoder="resnet34")
    staging, out = tmp_path / "staging", tmp_path / "map.tif"
    cmd = _cmd(scene, bundle, out, staging)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    _wait_for(lambda: len(list(staging.glob("*/b*.npz"))) >= 10)
    code, err = _ctrl_c(proc)
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    m = re.fullmatch(
        r"interrupted: (\d+) of (\d+) blocks staged; run the same command again "
        r"to resume",
        last,
    )
    assert m, err
    assert _quiet(err) == [], err
    assert not out.exists() and _leftovers(tmp_path, "map") == []
    staged = len(list(staging.glob("*/b*.npz")))
    assert staged >= int(m.group(1)) >= 10
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    reused = int(re.search(r"(\d+)/\d+\s+blocks\s+reused", r.stdout).group(1))
    assert reused >= int(m.group(1))


def test_ctrl_c_during_the_assembly_leaves_no_output_then_or_later(synth, bundles, tmp_path):
    scene, _ = synth(4096, 4096, seed=32)  # an assembly long enough to interrupt
    bundle = bundles("pixelnet", tile=256, overlap=32)
    staging, out = tmp_path / "staging", tmp_path / "big.tif"
    cmd = _cmd(scene, bundle, out, staging, block=1024)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    # the assembly streams the staged blocks into a GeoTIFF in the staging folder first
    _wait_for(lambda: any(staging.glob("*/cls.*.tif")))
    code, err = _ctrl_c(proc)
    assert code == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted while assembling big.tif"), err
    assert _quiet(err) == [], err
    time.sleep(8)  # an assembly that ran on would put the COG in place by now
    assert _leftovers(tmp_path, "big") == [], _leftovers(tmp_path, "big")
    assert not list(staging.glob("*/CANCEL"))


def test_a_block_that_crashes_its_worker_every_time_ends_the_job(synth, bundles, tmp_path):
    scene, _ = synth(600, 700, seed=33)
    bundle = bundles("pixelnet", tile=128, overlap=32)
    staging, out = tmp_path / "staging", tmp_path / "map.tif"
    cmd = _cmd(scene, bundle, out, staging, block=256)
    env = {**os.environ, "GEOSEG_TEST_CRASH_BLOCK": "b00001_00001"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert re.fullmatch(
        r"error: block b00001_00001 \(rows \d+-\d+, columns \d+-\d+\) killed its worker \d+ "
        r"times, .*run the same command again to resume",
        lines[-1],
    ), r.stderr
    assert _quiet(r.stderr) == [], r.stderr
    assert not out.exists()
    staged = {p.stem for p in staging.glob("*/b*.npz")}
    assert staged and "b00001_00001" not in staged  # the others' work is kept
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and out.exists(), r.stderr

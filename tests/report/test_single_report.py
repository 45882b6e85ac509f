"""``--report`` on single commands: ``geoseg evaluate`` and ``geoseg change`` write one
self-contained report.html beside their outputs (real processes, whole terminal)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.vector.test_vectorize import write_classes

GEOSEG = str(Path(sys.executable).with_name("geoseg"))
CLASSES = [
    {"id": 1, "name": "Water", "color": "#1f78b4"},
    {"id": 2, "name": "Forest", "color": "#33a02c"},
]


def _map(path: Path, arr: np.ndarray) -> Path:
    return write_classes(path, arr, classes=CLASSES)


def _geoseg(*args, cwd):
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [GEOSEG, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def test_evaluate_and_change_report(client, tmp_path):
    a = np.ones((64, 64), np.uint8)
    a[:, 40:] = 2
    b = np.ones((64, 64), np.uint8)
    b[:, 24:] = 2
    m1 = _map(tmp_path / "lc_2015-06-01.tif", a)
    m2 = _map(tmp_path / "lc_2020-06-01.tif", b)
    sched = ("--scheduler", client.scheduler.address)
    r = _geoseg("evaluate", m2, "--reference", m1, "-o", "acc", "--report", *sched, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("overall accuracy 0.750 over 4,096 pixels"), r.stdout
    assert lines[-2:] == [
        "wrote acc/report.json (+ CSV tables and plots)",
        "wrote acc/report.html",
    ]
    page = (tmp_path / "acc" / "report.html").read_text()
    assert "<title>Accuracy of lc_2020-06-01.tif</title>" in page
    assert "<h2>Accuracy</h2>" in page and '<section id="map">' in page
    assert 'class="sw" style="background:#33a02c"' in page  # swatches
    assert not re.search(r"@import|<link|<script[^>]+src=", page)  # self-contained
    assert 'id="webmap-map"' in page  # the map, interactive
    assert re.search(r'href="report\.json"', page)  # products linked relative to the page

    # a second --report does not replace it silently
    r = _geoseg("evaluate", m2, "--reference", m1, "-o", "acc", "--report", *sched, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines()[-1].startswith("error: ")
    assert "--overwrite" in r.stderr

    # (an absolute folder: the session's workers run elsewhere, change stages on them)
    r = _geoseg("change", "--before", m1, "--after", m2, "-o", tmp_path / "chg", "--report", *sched,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"wrote {tmp_path / 'chg' / 'report.html'}"
    page = (tmp_path / "chg" / "report.html").read_text()
    assert "<h2>Change</h2>" in page and "Caveat" in page
    assert "the confidence gate is off" in page
    assert 'id="webmap-change"' in page


def test_predict_and_compare_report(client, synth, bundles, tmp_path):
    """predict --report: <map>_report.html beside the map, the map over the scene in the
    interactive view; compare --report: report.html with the comparison; a remote or Zarr
    output is refused in one line before any work."""
    scene, labels = synth(96, 128, patch=32, seed=4)
    sched = ("--scheduler", client.scheduler.address)
    bundle = bundles("pixelnet")
    # (an absolute output: the session's workers run in another folder)
    lc = tmp_path / "lc.tif"
    r = _geoseg("predict", scene, "-m", bundle, "-o", lc, "--report", *sched, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"wrote {tmp_path / 'lc_report.html'}", r.stdout
    page = (tmp_path / "lc_report.html").read_text()
    assert "<title>Prediction of lc.tif</title>" in page and "<h2>Map</h2>" in page
    m = re.search(r'id="webmap-map-data">(.*?)</script>', page, re.S)
    assert m and json.loads(m.group(1))["scene"]["uri"].startswith("data:image/png;base64,")
    assert re.search(r'href="lc\.tif"', page)  # products linked relative to the page

    r = _geoseg("predict", scene, "-m", bundle, "-o", "lc.zarr", "--report", *sched, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "error: --report needs a local .tif output: predict to a file, then run "
        "`geoseg evaluate --report` or a workflow on it"
    ]
    assert not (tmp_path / "lc.zarr").exists()

    a = _map(tmp_path / "a.tif", np.where(np.arange(64)[None, :] < 40, 1, 2).repeat(64, 0))
    b = _map(tmp_path / "b.tif", np.where(np.arange(64)[None, :] < 24, 1, 2).repeat(64, 0))
    r = _geoseg("compare", a, b, "--reference", a, "-o", "cmp", "--report", *sched, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "wrote cmp/report.html"  # (a relative folder works)
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "<h2>Comparison</h2>" in page and "McNemar" in page

"""``--report`` on single commands: ``geoseg evaluate`` and ``geoseg change`` write one
self-contained report.html beside their outputs (real processes, whole terminal)."""

from __future__ import annotations

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
    assert not re.search(r"url\(|@import|<link|<script", page)  # self-contained
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

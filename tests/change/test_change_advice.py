"""``geoseg change`` as a new user meets it: each advice printed once (a warning is not
repeated as a note) and only where it applies; the report's change table says where a class
is never mapped on one date and when the gate is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

from geoseg.report.tables import change_tables, label
from tests.vector.test_vectorize import write_classes

GEOSEG = str(Path(sys.executable).with_name("geoseg"))
CLASSES = [
    {"id": 1, "name": "Water", "color": "#1f78b4"},
    {"id": 2, "name": "Forest", "color": "#33a02c"},
    {"id": 3, "name": "Agriculture", "color": "#ffff99"},
]


def _map(path: Path, arr: np.ndarray) -> Path:
    return write_classes(path, arr, classes=CLASSES)


def test_advice_once_and_never_mapped_caveat(client, tmp_path):
    before = np.ones((64, 64), np.uint8)
    before[:, 32:] = 3  # Agriculture on the earlier map only
    after = np.ones((64, 64), np.uint8)
    after[:, 32:] = 2
    a = _map(tmp_path / "lc_2015-06-01.tif", before)
    b = _map(tmp_path / "lc_2020-06-01.tif", after)
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
    r = subprocess.run(
        [GEOSEG, "change", "--before", a, "--after", b, "-o", tmp_path / "chg", "--scheduler",
         client.scheduler.address],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    advice = (
        "no probabilities for the earlier date and the later date: the confidence gate is not "
        "applied (every differing pixel counts as changed); to gate, predict both dates with "
        "--probabilities (or give the scenes and --model)"
    )
    said = r.stdout + r.stderr
    assert said.count("gate is not applied") == 1, said  # once, as a warning, not a note too
    assert f"warning: {advice}" in r.stderr.splitlines()
    assert "--before-probabilities" not in said  # nothing to pass: the maps have none
    assert r.stdout.splitlines()[0].startswith("changed 20.48 ha of 40.96 ha; no confidence")

    rep = json.loads((tmp_path / "chg" / "report.json").read_text())
    head = change_tables(rep)[0]
    caveats = [row[1]["text"] for row in head["rows"] if row[0]["text"] == "Caveat"]
    assert caveats == [
        "Forest is never mapped on the earlier date: its change figures only reflect the later map",
        "Agriculture is never mapped on the later date: its change figures only reflect the "
        "earlier map",
        "the confidence gate is off (no probabilities): every difference between the maps "
        "counts as change, misclassifications included",
    ]
    per_class = change_tables(rep)[2]
    assert [row[0].get("swatch") for row in per_class["rows"]] == ["#1f78b4", "#33a02c", "#ffff99"]


def test_a_relative_output_on_another_schedulers_workers(client, tmp_path):
    """The session cluster's workers run in another folder: the staging must not be relative."""
    a = _map(tmp_path / "a.tif", np.ones((64, 64), np.uint8))
    b = _map(tmp_path / "b.tif", np.full((64, 64), 2, np.uint8))
    r = subprocess.run(
        [GEOSEG, "change", "--before", a, "--after", b, "-o", "chg", "--scheduler",
         client.scheduler.address],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "chg" / "change_fromto.tif").exists()
    assert not list(tmp_path.rglob(".geoseg-*"))  # the staging went away


def test_labels_as_a_reader_writes_them():
    assert label("best_val_miou") == "Best validation mIoU"
    assert label("best_val_oa") == "Best validation OA"
    assert label("oa") == "OA" and label("miou") == "mIoU"
    assert label("mpx_per_s") == "Mpx/s" and label("compared_ha") == "Compared (ha)"
    assert label("weights_sha256") == "Weights SHA-256"


def test_two_scenes_without_a_model_are_told_to_pass_one(synth, tmp_path):
    scene, _ = synth(64, 64, seed=5)
    with rasterio.open(scene) as src:
        count, dtype = src.count, src.dtypes[0]
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}
    r = subprocess.run(
        [GEOSEG, "change", "--before", scene, "--after", scene, "-o", tmp_path / "chg"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        f"error: {scene} has {count} {dtype} bands: it looks like a scene, not a class map: "
        "pass --model BUNDLE to predict both dates first"
    ]
    assert not (tmp_path / "chg").exists()

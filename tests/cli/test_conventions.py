"""The command line as a new user meets it, through real ``geoseg`` processes with the whole
terminal asserted: ``--version``; output formats from suffixes (a vector suffix geoseg cannot
write is one line before any work); ``geoseg run --dry-run / --set / --workers /
--scheduler``; every error of a workflow config at once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from geoseg.version import __version__
from geoseg.workflow.manifest import MANIFEST

GEOSEG = str(Path(sys.executable).with_name("geoseg"))
WRITES = ".gpkg, .shp, .parquet, .fgb, .geojson"
CLASSES = [
    {"id": 1, "name": "Water", "color": "#1f78b4"},
    {"id": 2, "name": "Building", "color": "#e31a1c"},
]


def geoseg(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "300", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [GEOSEG, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def classmap(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("conventions")
    arr = np.ones((64, 80), np.uint8)
    arr[10:20, 10:30] = 2
    arr[40:50, 50:70] = 2
    prof = dict(
        driver="GTiff", height=64, width=80, count=1, dtype="uint8", nodata=0,
        crs="EPSG:32612", transform=from_origin(500000.0, 4200000.0, 10.0, 10.0),
    )  # fmt: skip
    with rasterio.open(d / "map.tif", "w", **prof) as ds:
        ds.write(arr, 1)
        ds.update_tags(1, CLASSES=json.dumps(CLASSES))
    return d / "map.tif"


def test_version(tmp_path):
    r = geoseg("--version", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"geoseg {__version__}\n", "")


@pytest.mark.parametrize(
    "args, expect",
    [
        (
            ["--out", "x.kml"],
            f"error: x.kml: geoseg does not write .kml vector layers: name the output with "
            f"one of {WRITES}",
        ),
        (
            ["-o", "poly.png"],
            f"error: poly.png: geoseg does not write .png vector layers: name the output with "
            f"one of {WRITES}",
        ),
        (
            ["-o", "x.gpkg", "--format", "shp"],
            "error: x.gpkg: --format shp writes .shp files, not .gpkg: name the output *.shp "
            "or leave --format out",
        ),
        (["-o", "x.gpkg", "--format", "kml"], "error: unknown vector format 'kml': use one "
         "of gpkg, shp, parquet, fgb, geojson"),
    ],
)  # fmt: skip
def test_vectorize_refuses_a_suffix_it_cannot_write(classmap, tmp_path, args, expect):
    r = geoseg("vectorize", classmap, *args, "--workers", "1", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (2, "", [expect])
    assert list(tmp_path.iterdir()) == []  # nothing written, no cluster started


def test_instances_polygons_and_sample_follow_the_same_rule(classmap, tmp_path):
    r = geoseg(
        "instances", classmap, "-o", "ids.tif", "--polygons", "ids.kml", "--things",
        "Building", "--workers", "1", cwd=tmp_path,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        f"error: ids.kml: geoseg does not write .kml vector layers: name the output with one "
        f"of {WRITES}"
    ]
    r = geoseg("sample", classmap, "-o", "points.kml", "--n", "10", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "error: points.kml: the sample is written as a GeoPackage, name it *.gpkg"
    ]
    assert list(tmp_path.iterdir()) == []


# ---- geoseg run ------------------------------------------------------------------------------


@pytest.fixture()
def workflow(synth, bundles, tmp_path):
    scene, labels = synth(96, 128, patch=32, seed=11)
    doc = {
        "name": "conventions",
        "output": "out",
        "model": str(bundles("pixelnet", tile=64, overlap=16)),
        "predict": {"scene": str(scene), "block": 64},
        "vectorize": {"outputs": ["lc.gpkg"]},
        "report": {"out": "report.html", "preview_px": 128},
    }
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, doc


def test_run_dry_run_set_and_scheduler(workflow, client, tmp_path):
    path, _ = workflow
    r = geoseg("run", path, "--dry-run", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.splitlines() == [
        "dry run: 3 of 3 stages would run in out (nothing was run or written)",
        "  run   predict    it has not run in this output folder",
        "  run   vectorize  it has not run in this output folder",
        "  run   report     it has not run in this output folder",
    ]
    assert not (tmp_path / "out").exists()

    r = geoseg("run", path, "--scheduler", client.scheduler.address, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / MANIFEST).exists() and (tmp_path / "out" / "lc.gpkg").exists()
    listed = r.stdout.splitlines()  # every product, the STAC collection too, the report last
    assert re.fullmatch(r"  STAC collection +out/collection\.json", listed[-2]), r.stdout
    assert re.fullmatch(r"  HTML report +out/report\.html", listed[-1]), r.stdout

    r = geoseg("run", path, "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == (
        "dry run: 0 of 3 stages would run in out (nothing was run or written)"
    )
    assert all("skip" in ln for ln in r.stdout.splitlines()[1:]), r.stdout

    r = geoseg("run", path, "--dry-run", "--set", "predict.block=128", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "dry run: 3 of 3 stages would run in out (nothing was run or written)",
        "  run   predict    its parameters or input files changed since it ran",
        "  run   vectorize  the predict stage it reads from will run",
        "  run   report     the predict, vectorize stages it reads from will run",
    ]
    r = geoseg("run", path, "--dry-run", "--force", cwd=tmp_path)
    assert r.stdout.splitlines()[1] == "  run   predict    --force runs every stage"
    (tmp_path / "out" / "lc.gpkg").unlink()
    r = geoseg("run", path, "--dry-run", cwd=tmp_path)
    assert r.stdout.splitlines()[2] == (
        f"  run   vectorize  its output {tmp_path / 'out' / 'lc.gpkg'} is missing"
    )


def test_run_flag_and_config_errors(workflow, tmp_path):
    path, doc = workflow
    r = geoseg("run", path, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "error: give --workers (a local cluster) or --scheduler, not both"
    ]
    r = geoseg("run", path, "--dry-run", "--set", "predict.blok=128", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        f"error: workflow {path} (with --set): unknown key 'predict.blok': did you mean "
        "'predict.block'?"
    ]
    r = geoseg("run", path, "--set", "predict", cwd=tmp_path)
    assert r.returncode == 2 and "--set takes KEY=VALUE" in r.stderr
    # a vector output geoseg cannot write: before any stage runs
    bad = {**doc, "vectorize": {"outputs": ["lc.kml"]}}
    path.write_text(yaml.safe_dump(bad))
    r = geoseg("run", path, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        f"error: workflow: vectorize.outputs[0]: {tmp_path / 'out' / 'lc.kml'}: geoseg does "
        f"not write .kml vector layers: name the output with one of {WRITES}"
    ]
    assert not (tmp_path / "out").exists()
    # several mistakes: all of them, one line each
    bad = {**doc, "predict": {**doc["predict"], "block": "big", "tta": "sideways"}}
    bad["vectorize"] = {"outputz": ["lc.gpkg"]}
    path.write_text(yaml.safe_dump(bad))
    r = geoseg("run", path, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    where = f"workflow {path}"
    assert r.stderr.splitlines() == [
        f"error: {where}: 3 errors, fix them all:",
        f"  {where}: predict.block must be an integer, got 'big'",
        f"  {where}: predict.tta must be one of 'none', 'flips', 'd4', got 'sideways'",
        f"  {where}: unknown key 'vectorize.outputz': did you mean 'vectorize.outputs'?",
    ]


def test_run_reports_a_band_count_mismatch_before_any_stage(workflow, synth, tmp_path):
    path, doc = workflow
    three, _ = synth(96, 128, patch=32, seed=11, bands=3)
    path.write_text(yaml.safe_dump({**doc, "predict": {"scene": str(three), "block": 64}}))
    for args in ([], ["--dry-run"]):
        r = geoseg("run", path, *args, cwd=tmp_path)
        assert (r.returncode, r.stdout) == (2, "")
        assert r.stderr.splitlines() == [
            f"error: workflow: predict stage: the model reads bands [1, 2, 3, 4] but {three} "
            "has 3 band(s): pass a scene with the bands the model was trained on (see "
            "'geoseg bundle info')"
        ]
    assert not (tmp_path / "out").exists()


def test_help_shows_flags_as_plain_flags(tmp_path):
    r = geoseg("run", "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[1]: ln for ln in r.stdout.splitlines() if ln.startswith("│ --")}
    for flag in ("--force", "--dry-run", "--help"):
        assert "<bool>" not in lines[flag], lines[flag]
    assert "KEY=VALUE" in lines["--set"] and "tcp://HOST:PORT" in lines["--scheduler"]
    # a name that says what it counts (--n stays a hidden alias), and a reference that says
    # it is required though it may also come as the second argument
    text = " ".join(geoseg("sample", "--help", cwd=tmp_path).stdout.replace("│", " ").split())
    assert "--points <int> Total points" in text and "--n " not in text
    text = " ".join(geoseg("evaluate", "--help", cwd=tmp_path).stdout.replace("│", " ").split())
    assert "Reference (required):" in text


def test_one_list_convention_repeated_or_commas(classmap, client, tmp_path):
    """Every list of names takes its values repeated or comma-separated, alike; --help says
    so and shows the list's form."""
    sched = ("--scheduler", client.scheduler.address)
    out = {}
    for form, args in (
        ("commas", ["--things", "Water,Building"]),
        ("repeated", ["--things", "Water", "--things", "Building"]),
        ("mixed", ["--things", "Water,", "--things", "Building"]),
    ):
        ids = tmp_path / f"{form}.tif"
        r = geoseg("instances", classmap, "-o", ids, *args, *sched, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        out[form] = json.loads(ids.with_suffix(".json").read_text())["per_class"]
    assert out["commas"] == out["repeated"] == out["mixed"]
    assert set(out["commas"]) == {"Water", "Building"}

    a = tmp_path / "a.tif"
    a.write_bytes(classmap.read_bytes())
    for args in (["--names", "deep,obia"], ["--names", "deep", "--names", "obia"]):
        r = geoseg("compare", classmap, a, "-r", classmap, "-o", tmp_path / "cmp",
                   "--overwrite", *args, *sched, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "  deep: OA 1.000" in r.stdout and "  obia: OA 1.000" in r.stdout

    for cmd, flag, form in (
        ("compare", "--names", "NAME,..."),
        ("instances", "--things", "NAME,..."),
        ("predict", "--assets", "ASSET,..."),
        ("evaluate", "--class-map", "REF=MAP,..."),
    ):
        r = geoseg(cmd, "--help", cwd=tmp_path)
        text = " ".join(r.stdout.replace("│", " ").split())
        assert f"{flag} {form}" in text, (cmd, flag)
        assert "A list: repeat the flag or separate the values with commas." in text, cmd

"""geoseg evaluate --instances: PQ over blocks equals the whole-array figures; the files."""

from __future__ import annotations

import csv
import json

import numpy as np

from geoseg.core.instances import label_scene
from geoseg.core.panoptic import overlaps, panoptic_quality
from geoseg.instances.evaluate import evaluate_instances
from tests.vector.test_vectorize import speckle, write_classes


def test_pq_over_blocks_equals_whole_arrays(client, tmp_path):
    ref = speckle(260, 330, seed=5, cell=5)
    pred = ref.copy()
    rng = np.random.default_rng(1)
    flip = rng.random(ref.shape) < 0.04  # noise: splits, merges, false and missed objects
    pred[flip] = rng.integers(1, 4, flip.sum())
    pm = write_classes(tmp_path / "map.tif", pred)
    rm = write_classes(tmp_path / "ref.tif", ref)
    rep = evaluate_instances(
        pm, rm, tmp_path / "out", things=["Built-up", "Water"], block=64, client=client
    )
    p_ids, r_ids = label_scene(pred, [1, 3], 4), label_scene(ref, [1, 3], 4)
    counts = overlaps(p_ids, r_ids, ref > 0)

    def cls_of(ids, arr):
        return {int(i): int(arr[ids == i][0]) for i in np.unique(ids) if i}

    want = panoptic_quality(counts, cls_of(p_ids, pred), cls_of(r_ids, ref), [1, 3])
    for k, name in ((1, "Water"), (3, "Built-up")):
        got = rep["things"][name]
        assert (got["tp"], got["fp"], got["fn"]) == (want[k]["tp"], want[k]["fp"], want[k]["fn"])
        assert abs(got["pq"] - want[k]["pq"]) < 1e-4
        assert 0 < got["pq"] < 1
    assert set(rep["stuff"]) == {"Forest"}
    saved = json.loads((tmp_path / "out" / "instances.json").read_text())
    assert saved["things"] == rep["things"]
    rows = list(csv.reader((tmp_path / "out" / "instances.csv").open()))
    assert rows[0][:2] == ["class", "pq"] and len(rows) == 3


def test_small_reference_components_are_void(client, tmp_path):
    """reference_min_pixels: reference components below it are no instance to find, and
    what the map predicts on them is no false positive; equal to the whole-array figures."""
    ref = speckle(200, 240, seed=7, cell=5)
    pred = ref.copy()
    rng = np.random.default_rng(3)
    flip = rng.random(ref.shape) < 0.03
    pred[flip] = rng.integers(1, 4, flip.sum())
    pm = write_classes(tmp_path / "map.tif", pred)
    rm = write_classes(tmp_path / "ref.tif", ref)
    things = [1, 3]
    p_ids, r_ids = label_scene(pred, things, 4), label_scene(ref, things, 4)
    size = np.bincount(r_ids.ravel())
    n = max(3, int(np.percentile(size[1:], 60)))  # voids a good part of the components
    keep = np.where(size[r_ids] >= n, r_ids, 0)
    void = (ref == 0) | (np.isin(ref, things) & (keep == 0))

    def cls_of(ids, arr):
        return {int(i): int(arr[ids == i][0]) for i in np.unique(ids) if i}

    want = panoptic_quality(
        overlaps(p_ids, keep, ~void), cls_of(p_ids, pred), cls_of(keep, ref), things
    )
    kw = dict(things=["Built-up", "Water"], block=64, client=client)
    every = evaluate_instances(pm, rm, tmp_path / "all", **kw)
    rep = evaluate_instances(pm, rm, tmp_path / "big", reference_min_pixels=n, **kw)
    assert rep["reference_min_pixels"] == n and "void" in rep["reference_instances"]
    for k, name in ((1, "Water"), (3, "Built-up")):
        got = rep["things"][name]
        assert (got["tp"], got["fp"], got["fn"]) == (want[k]["tp"], want[k]["fp"], want[k]["fn"])
        assert got["reference"] == want[k]["reference"] < every["things"][name]["reference"]
        assert got["fn"] < every["things"][name]["fn"]


def test_evaluate_cli_passes_the_instance_options(client, tmp_path):
    from typer.testing import CliRunner

    from geoseg.cli.main import app

    ref = speckle(120, 150, seed=9, cell=5)
    pm = write_classes(tmp_path / "map.tif", ref)
    args = ["evaluate", str(pm), "--reference", str(pm), "-o", str(tmp_path / "acc")]
    args += ["--instances", "--things", "Built-up,Water", "--min-pixels", "3"]
    args += ["--reference-min-pixels", "4", "--border-threshold", "0.7"]
    r = CliRunner().invoke(app, [*args, "--scheduler", client.scheduler.address])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "acc" / "instances.json").read_text())
    assert (rep["min_pixels"], rep["reference_min_pixels"]) == (3, 4)
    assert set(rep["things"]) == {"Built-up", "Water"}
    assert "Built-up: PQ" in r.output and "Water: PQ" in r.output

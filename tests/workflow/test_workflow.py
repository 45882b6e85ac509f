"""Workflows on tiny synthetic scenes and the session's local cluster: stages chain, current
stages are skipped, an edited parameter re-runs only what depends on it, config mistakes are
one-line errors, outputs stay inside the output folder."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from geoseg.cli.main import app
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.cog import CogWriter, RasterSpec
from geoseg.workflow import run
from geoseg.workflow.manifest import MANIFEST

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
H, W = 96, 128


@pytest.fixture()
def landcover(synth, bundles, tmp_path):
    """A workflow file (predict -> vectorize -> evaluate -> report) and a writer for edits."""
    scene, labels = synth(H, W, patch=32, seed=11)
    model = bundles("pixelnet", tile=64, overlap=16)
    doc = {
        "name": "synthetic land cover",
        "output": "out",
        "model": str(model),
        "predict": {"scene": str(scene), "block": 64},
        "vectorize": {"outputs": ["polygons/lc.gpkg", "polygons/lc.shp"], "mmu": 0.0},
        "evaluate": {"reference": str(labels), "block": 64},
        "report": {"out": "report.html", "preview_px": 256},
    }
    path = tmp_path / "landcover.yaml"

    def write(d: dict) -> Path:
        path.write_text(yaml.safe_dump(d))
        return path

    write(doc)
    return path, doc, write


def test_stages_chain_and_a_finished_workflow_reruns_instantly(landcover, client):
    path, _, _ = landcover
    res = run(path, client=client)
    out = path.parent / "out"
    assert res.ran == ["predict", "vectorize", "evaluate", "report"]
    assert res.output == out
    for name in (
        "landcover.tif",
        "landcover_probabilities.tif",
        "landcover_confidence.tif",
        "landcover.qml",
        "polygons/lc.gpkg",
        "polygons/lc.shp",
        "accuracy/report.json",
        "report.html",
        MANIFEST,
    ):
        assert (out / name).exists(), name
    with rasterio.open(out / "landcover.tif") as src:
        assert src.shape == (H, W) and src.colormap(1)
    assert (
        pyogrio.read_info(out / "polygons/lc.gpkg", layer="lc")["features"]
        == pyogrio.read_info(out / "polygons/lc.shp")["features"]
        > 0
    )
    rep = json.loads((out / "accuracy/report.json").read_text())
    assert rep["overall"]["overall_accuracy"] >= 0  # an untrained model: any value
    html = (out / "report.html").read_text()
    assert "Run summary" in html and "Accuracy" in html and "data:image/png;base64," in html
    assert set(res.products) >= {
        "class map",
        "polygons (gpkg)",
        "polygons (shp)",
        "accuracy report",
        "HTML report",
    }

    t0 = time.perf_counter()
    again = run(path)  # no client: none is started when every stage is current
    assert again.ran == [] and again.skipped == ["predict", "vectorize", "evaluate", "report"]
    assert time.perf_counter() - t0 < 2.0
    assert again.products == res.products


def test_an_edited_parameter_reruns_only_the_stages_that_depend_on_it(landcover, client):
    path, doc, write = landcover
    run(path, client=client)
    mtime = (path.parent / "out/landcover.tif").stat().st_mtime_ns

    doc["vectorize"]["mmu"] = 0.5
    assert run(write(doc), client=client).ran == ["vectorize", "report"]
    assert (path.parent / "out/landcover.tif").stat().st_mtime_ns == mtime

    doc["evaluate"]["block"] = 96
    assert run(write(doc), client=client).ran == ["evaluate", "report"]

    doc["report"]["title"] = "Another title"
    res = run(write(doc), client=client)
    assert res.ran == ["report"]
    assert "Another title" in (path.parent / "out/report.html").read_text()

    doc["predict"]["block"] = 128
    assert run(write(doc), client=client).ran == ["predict", "vectorize", "evaluate", "report"]

    (path.parent / "out/polygons/lc.shp").unlink()  # a missing output re-runs its stage;
    assert run(path, client=client).ran == ["vectorize"]  # same hash: the report is current
    assert run(path, client=client, force=True).ran == [
        "predict",
        "vectorize",
        "evaluate",
        "report",
    ]


def test_predict_normalize_reruns_predict_and_reaches_the_tags_and_report(landcover, client):
    path, doc, write = landcover
    run(path, client=client)
    doc["predict"]["normalize"] = "scene"
    assert run(write(doc), client=client).ran == ["predict", "vectorize", "evaluate", "report"]
    out = path.parent / "out"
    with rasterio.open(out / "landcover.tif") as src:
        tags = src.tags()
    assert tags["GEOSEG_NORMALIZE"] == "scene" and "gain" in tags["GEOSEG_RADIOMETRY"]
    html = (out / "report.html").read_text()
    assert "Band radiometry (--normalize scene)" in html
    doc["predict"]["normalize"] = "histogram"
    with pytest.raises(GeoSegError, match="predict.normalize"):
        run(write(doc), client=client)


def test_all_stages_share_one_client_from_the_cluster_section(landcover, client, monkeypatch):
    """cluster.scheduler: the running test cluster, reached through its address; one
    connection serves every stage."""
    import geoseg.cluster.setup as cluster

    path, doc, write = landcover
    opened = []
    real = cluster.connect

    def counting(options=None, client=None):  # the stages pass the run's client on
        if client is None:
            opened.append(options)
        return real(options, client)

    monkeypatch.setattr(cluster, "connect", counting)
    doc["cluster"] = {"scheduler": client.scheduler.address}
    res = run(write(doc))
    assert res.ran == ["predict", "vectorize", "evaluate", "report"]
    assert [o.scheduler for o in opened] == [client.scheduler.address]
    assert any("connecting to the cluster took" in n for n in res.notes)


def test_a_changed_input_file_reruns_its_stage(landcover, client, tmp_path):
    path, doc, write = landcover
    ref = tmp_path / "reference.tif"
    ref.write_bytes(Path(doc["evaluate"]["reference"]).read_bytes())
    doc["evaluate"]["reference"] = "reference.tif"  # relative to the workflow file
    run(write(doc), client=client)
    with rasterio.open(ref, "r+") as ds:
        a = ds.read(1)
        a[:8, :8] = 1
        ds.write(a, 1)
    assert run(path, client=client).ran == ["evaluate", "report"]


@pytest.mark.parametrize(
    "edit, expect",
    [
        (
            {"predict": {"out": "../escape.tif"}},
            "predict.out: '../escape.tif' is outside the output folder",
        ),
        ({"predict": {"out": "/tmp/elsewhere.tif"}}, "outside the output folder"),
        ({"vectorize": {"outputs": ["ok.gpkg", "../../x.shp"]}}, "vectorize.outputs[1]"),
        ({"report": {"out": "."}}, "report.out"),
    ],
)
def test_outputs_cannot_escape_the_output_folder(landcover, edit, expect):
    path, doc, write = landcover
    for k, v in edit.items():
        doc[k] = {**doc[k], **v}
    with pytest.raises(GeoSegError, match=expect.replace("[", r"\[").replace("]", r"\]")):
        run(write(doc))
    assert not (path.parent / "escape.tif").exists()
    assert not (path.parent / "out").exists()  # nothing was started


@pytest.mark.parametrize(
    "edit, expect",
    [
        ({"outptu": "x"}, "unknown key 'outptu': did you mean 'output'?"),
        (
            {"vectorize": {"mmu_ha": 1}},
            "unknown key 'vectorize.mmu_ha': did you mean 'vectorize.mmu'?",
        ),
        ({"cluster": {"worker": 2}}, "did you mean 'cluster.workers'?"),
        ({"cluster": {"workers": "two"}}, "cluster.workers must be an integer, got 'two'"),
        ({"predict": {"scene": 5}}, "predict.scene must be a string or a list of strings, got 5"),
        ({"vectorize": {"connectivity": 6}}, "vectorize.connectivity must be one of 4, 8"),
        ({"evaluate": {"reference": None}}, "evaluate.reference must be a string"),
        ({"predict": None}, "vectorize works on the predicted map: add a predict section"),
        ({"model": None}, "predicting needs a model"),
        ({"cluster": {"workers": 2, "scheduler": "tcp://h:8786"}}, "not both"),
        (
            {"evaluate": {"reference": "missing.tif"}},
            "evaluate.reference: .*missing.tif does not exist",
        ),
    ],
)
def test_config_mistakes_are_one_line_errors(landcover, edit, expect):
    path, doc, write = landcover
    for k, v in edit.items():
        doc[k] = {**doc[k], **v} if isinstance(v, dict) and isinstance(doc.get(k), dict) else v
    with pytest.raises(GeoSegError, match=expect) as ei:
        run(write(doc))
    assert "\n" not in str(ei.value)


def test_cli_prints_products_and_fails_in_one_line(landcover, client, tmp_path):
    path, doc, write = landcover
    run(path, client=client)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        res = CliRunner().invoke(app, ["run", str(path)])  # all current: no cluster started
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, res.output
    assert "out/report.html" in res.output and "out/polygons/lc.shp" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: o\npredcit: {}\n")
    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 2
    assert "did you mean 'predict'?" in res.output


def test_a_dict_workflow_resolves_paths_from_the_current_folder(
    synth, bundles, client, tmp_path, monkeypatch
):
    scene, _ = synth(H, W, patch=32, seed=11)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/scene.tif").write_bytes(Path(scene).read_bytes())
    monkeypatch.chdir(tmp_path)
    res = run(
        {
            "output": "o",
            "model": str(bundles("pixelnet", tile=64, overlap=16)),
            "predict": {"scene": "data/scene.tif", "probabilities": False},
        },
        client=client,
    )
    assert res.ran == ["predict", "report"]
    assert (tmp_path / "o/landcover.tif").exists()
    assert not (tmp_path / "o/landcover_probabilities.tif").exists()


def test_train_when_the_model_is_missing_then_keep_it(synth, client, tmp_path):
    scene, labels = synth(H, W, patch=32, seed=11)
    tcfg = {
        "classes": CLASSES5,
        "scenes": [{"image": str(scene), "labels": str(labels)}],
        "split": {"mode": "blocks", "block": 32, "val_fraction": 0.25, "buffer": 4},
        "model": {"architecture": "pixelnet", "tile": 64, "overlap": 16},
        "training": {
            "epochs": 5,
            "samples_per_epoch": 16,
            "batch_size": 8,
            "crop": 32,
            "val_window": 32,
            "threads": 1,
        },
        "output": "ignored",
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(tcfg))
    doc = {
        "output": "out",
        "model": "no-such-bundle",
        "train": {"config": "train.yaml", "when": "missing", "set": {"training": {"epochs": 1}}},
        "predict": {"scene": str(scene), "block": 64},
    }
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = run(path, client=client)
    assert res.ran == ["train", "predict", "report"]
    assert any("no-such-bundle not found" in n for n in res.notes)
    bundle = tmp_path / "out/model"
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["provenance"]["epochs"] == 1 and not (tmp_path / "ignored").exists()
    assert run(path, client=client).ran == []
    doc["train"]["set"]["training"]["lr"] = 0.01  # a training parameter: everything again
    path.write_text(yaml.safe_dump(doc))
    assert run(path, client=client).ran == ["train", "predict", "report"]


def _class_cog(path: Path, arr: np.ndarray, like: Path) -> Path:
    with rasterio.open(like) as s:
        crs, tr = s.crs, s.transform
    w = CogWriter(
        RasterSpec(
            arr.shape[0], arr.shape[1], 1, crs, tr, nodata=0, classes=load_classes(CLASSES5)
        ),
        path.parent / "scratch",
    )
    w.write(Window(0, 0, *arr.shape), arr.astype(np.uint8))
    return w.finish(path)


def test_change_workflow_predicts_the_later_date_and_reports(synth, bundles, client, tmp_path):
    scene, labels = synth(H, W, patch=32, seed=11)
    with rasterio.open(labels) as s:
        before = _class_cog(tmp_path / "before.tif", s.read(1), labels)
    doc = {
        "output": "out",
        "model": str(bundles("pixelnet", tile=64, overlap=16)),
        "change": {
            "before": {"map": str(before), "date": "2019-06-01"},
            "after": {"scene": str(scene), "date": "2021-06-01"},
            "mmu": 0.0,
            "block": 64,
        },
    }
    path = tmp_path / "change.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = run(path, client=client)
    assert res.ran == ["predict_after", "change", "report"]
    out = tmp_path / "out"
    assert (out / "after.tif").exists() and (out / "after_probabilities.tif").exists()
    rep = json.loads((out / "change/report.json").read_text())
    assert rep["before"]["date"] == "2019-06-01" and rep["after"]["date"] == "2021-06-01"
    html = (out / "report.html").read_text()
    assert 'id="change"' in html and "Transitions" in html
    assert run(path, client=client).ran == []


@pytest.mark.skipif(
    importlib.util.find_spec("geoseg.baseline.obia") is None
    or importlib.util.find_spec("geoseg.compare.compare") is None,
    reason="the OBIA baseline and compare are not in this checkout",
)
def test_compare_obia_workflow(synth, client, tmp_path):
    scene, labels = synth(H, W, patch=32, seed=11)
    tcfg = {
        "classes": CLASSES5,
        "scenes": [{"image": str(scene), "labels": str(labels)}],
        "split": {"mode": "halves", "buffer": 4},
        "model": {"architecture": "pixelnet", "tile": 64, "overlap": 16},
        "training": {
            "epochs": 1,
            "samples_per_epoch": 16,
            "batch_size": 8,
            "crop": 32,
            "val_window": 32,
            "threads": 1,
        },
        "output": "unused",
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(tcfg))
    (tmp_path / "obia.yaml").write_text(
        yaml.safe_dump(
            {
                "train_config": "train.yaml",
                "map": "all",
                "features": ["mean", "std"],
                "segmentation": {"method": "slic", "size": 8},
                "classifier": {"kind": "rf", "params": {"n_estimators": 10}},
            }
        )
    )
    doc = {
        "output": "out",
        "train": {"config": "train.yaml"},
        "predict": {"scene": str(scene), "block": 64},
        "baseline": {"config": "obia.yaml", "out": "obia.tif"},
        "compare": {"reference": "heldout", "block": 64},
    }
    path = tmp_path / "cmp.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = run(path, client=client)
    assert res.ran == ["train", "predict", "baseline", "heldout", "compare", "report"]
    rep = json.loads((tmp_path / "out/compare/compare.json").read_text())
    assert [m["name"] for m in rep["maps"]] == ["deeplabv3plus", "obia"]
    with rasterio.open(tmp_path / "out/heldout.tif") as src:  # the validation half only
        assert (src.read(1)[:, : W // 2 - 4] == src.nodata).all()
    assert 'id="compare"' in (tmp_path / "out/report.html").read_text()
    assert run(path, client=client).ran == []


def test_instances_stage_counts_the_thing_classes(landcover, client):
    path, doc, write = landcover
    doc["instances"] = {"things": ["class2", "class4"], "block": 64, "polygons": "inst.fgb"}
    res = run(write(doc), client=client)
    assert "instances" in res.ran
    out = path.parent / "out"
    with rasterio.open(out / "landcover.tif") as src:
        cls = src.read(1)
    from geoseg.core.instances import label_scene

    whole = label_scene(cls, [2, 4], 4)
    with rasterio.open(out / "instances.tif") as src:
        assert np.array_equal(src.read(1), whole)
    assert pyogrio.read_info(out / "inst.fgb")["features"] == whole.max()
    assert res.products["instances"] == str(out / "instances.tif")
    assert (
        f"Instances (geoseg instances): {whole.max():,} objects"
        in (out / "report.html").read_text()
    )
    doc["instances"]["connectivity"] = 6
    with pytest.raises(GeoSegError, match="instances.connectivity"):
        run(write(doc), client=client)

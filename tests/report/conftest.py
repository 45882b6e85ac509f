"""The report every report test reads: every section, from real evaluate, change and compare
results, built once for the package."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from geoseg.accuracy.evaluate import evaluate
from geoseg.change.change import change
from geoseg.compare.compare import compare as compare_maps
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.io.cog import CogWriter, RasterSpec
from geoseg.report import write_report

CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
REMOTE = "s3://bucket/scenes/scene.tif"


def _cog(path: Path, arr: np.ndarray, crs, transform) -> str:
    w = CogWriter(
        RasterSpec(
            arr.shape[0], arr.shape[1], 1, crs, transform, nodata=0, classes=load_classes(CLASSES5)
        ),
        path.parent / "scratch",
    )
    w.write(Window(0, 0, *arr.shape), arr.astype(np.uint8))
    return str(w.finish(path))


@pytest.fixture(scope="package")
def built(synth, client, tmp_path_factory) -> SimpleNamespace:
    """A report with every section, from real evaluate and change results, and a run summary
    that names its files by absolute paths (as a workflow does)."""
    root = tmp_path_factory.mktemp("report")
    scene, labels = synth(120, 160, patch=40, seed=21)
    with rasterio.open(labels) as s:
        lab, crs, tr = s.read(1), s.crs, s.transform
    before = _cog(root / "before.tif", lab, crs, tr)
    later = lab.copy()
    later[20:60, 30:90] = 3
    later[:, :5] = 0  # nodata strip
    after = _cog(root / "after.tif", later, crs, tr)
    ev = evaluate(after, labels, root / "accuracy", client=client, block=64)
    ch = change(before, after, root / "change", client=client, block=64).report
    compare = compare_maps(
        [after, before],
        labels,
        root / "compare",
        names=["model", "baseline"],
        client=client,
        block=64,
    )
    compare["method_seconds"] = {"model": 2.0, "baseline": 3.5}
    summary = {
        "title": "Test <report>",
        "workflow": str(root / "workflow.yml"),
        "output": str(root),
        "inputs": {
            "scene": f"{root / 'scene.tif'}, {REMOTE}",
            "reference": str(labels),
            "training labels": str(root / "my data" / "labels.gpkg"),
        },
        "model": {
            "name": "m",
            "architecture": "pixelnet",
            "path": str(root / "bundle"),
            "provenance": {"trained": False},
        },
        "parameters": {"predict": {"block": 64, "tile": 128, "lr": 0.0003, "out": str(root)}},
        "notes": [f"the class map {after} was written."],
        "stages": [
            {"name": "predict", "status": "ran", "seconds": 1.5, "megapixels": 0.0192},
            {"name": "report", "status": "ran", "seconds": 0.4},
        ],
        # as geoseg.workflow.summary gives them: relative to the output folder
        "products": [
            {"name": "class map", "path": "after.tif", "size": "3 KB"},
            {"name": "accuracy report", "path": "accuracy/report.json", "size": "9 KB"},
        ],
    }
    html = write_report(
        root / "report.html",
        summary=summary,
        predict={
            "path": after,
            "scene": str(scene),
            "megapixels": 0.0192,
            "seconds": 1.5,
            "tiles": 2,
        },
        evaluate=ev,
        change=ch,
        compare=compare,
        preview_px=256,
    )
    return SimpleNamespace(
        html=html, root=root, map=after, before=before, labels=labels, scene=scene, change=ch
    )


@pytest.fixture(scope="package")
def report(built) -> Path:
    return built.html

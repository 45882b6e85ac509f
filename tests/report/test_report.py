"""The HTML report: one self-contained file with every section, loaded in headless Chromium
without console errors (skipped where Chromium or playwright is absent)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CLASSES5 = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]
SECTIONS = ["Run summary", "Map", "Accuracy", "Change", "Comparison"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _cog(path: Path, arr: np.ndarray, crs, transform) -> str:
    w = CogWriter(
        RasterSpec(
            arr.shape[0], arr.shape[1], 1, crs, transform, nodata=0, classes=load_classes(CLASSES5)
        ),
        path.parent / "scratch",
    )
    w.write(Window(0, 0, *arr.shape), arr.astype(np.uint8))
    return str(w.finish(path))


@pytest.fixture(scope="module")
def report(synth, client, tmp_path_factory) -> Path:
    """A report with every section, from real evaluate and change results."""
    root = tmp_path_factory.mktemp("report")
    _, labels = synth(120, 160, patch=40, seed=21)
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
        "inputs": {"scene": "scene.tif"},
        "model": {"name": "m", "architecture": "pixelnet", "provenance": {"trained": False}},
        "parameters": {"predict": {"block": 64, "tile": 128}},
        "stages": [
            {"name": "predict", "status": "ran", "seconds": 1.5, "megapixels": 0.0192},
            {"name": "report", "status": "ran", "seconds": 0.4},
        ],
        "products": [{"name": "class map", "path": "after.tif", "size": "3 KB"}],
    }
    return write_report(
        root / "report.html",
        summary=summary,
        predict={"path": after, "megapixels": 0.0192, "seconds": 1.5},
        evaluate=ev,
        change=ch,
        compare=compare,
        preview_px=256,
    )


def test_the_report_is_one_self_contained_file(report):
    html = report.read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html
    assert "Test &lt;report&gt;" in html  # escaped
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert not re.search(r"url\(|@import|<link|<script", html)
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) >= 6
    assert not list(report.parent.glob(".report.html.part*"))


def test_the_report_loads_in_headless_chromium_without_errors(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(report.as_uri(), wait_until="load")
            headings = page.locator("h2").all_inner_texts()
            sizes = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert headings == SECTIONS
    assert len(sizes) >= 6 and all(ok and w > 0 and h > 0 for ok, w, h in sizes)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000

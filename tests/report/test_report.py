"""The HTML report: one self-contained file with every section, loaded in headless Chromium
without console errors (skipped where Chromium or playwright is absent); figures legible at
100 % zoom or enlarged on a click, one number format per table column, map figures with
coordinates, a scale bar and the CRS, and paths relative to the report's folder."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geoseg.report.figures import class_preview, length_label
from tests.report.conftest import REMOTE, _cog

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SECTIONS = ["Run summary", "Map", "Accuracy", "Change", "Comparison"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LEAFLET_UNUSED = {
    "#default#VML",
    "images/layers.png",
    "images/layers-2x.png",
    "images/marker-icon.png",
}


@contextlib.contextmanager
def _page(url: str, width: int = 1280, offline: bool = False):
    """The page at ``url`` in headless Chromium and the errors it logs; ``offline``: with no
    network, and any request for other than a file: or data: URL logged as an error."""
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
            context = browser.new_context(viewport={"width": width, "height": 900}, offline=offline)
            page = context.new_page()
            if offline:
                page.on(
                    "request",
                    lambda r: (
                        None
                        if r.url.startswith(("file:", "data:"))
                        else errors.append(f"request: {r.url}")
                    ),
                )
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(url, wait_until="load")
            yield page, errors
        finally:
            browser.close()


def test_the_report_is_one_self_contained_file(report):
    html = report.read_text()
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html
    assert "Test &lt;report&gt;" in html  # escaped
    page = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)  # the markup, not the code
    images = re.findall(r'src="([^"]*)"', page)
    assert len(images) >= 6 and all(s.startswith("data:image/png;base64,") for s in images)
    links = re.findall(r'href="([^"]*)"', page)
    products = [h for h in links if not h.startswith("#")]
    assert products  # links to products: relative, to files that are there
    assert all("://" not in h and not h.startswith("/") for h in products)
    assert all((report.parent / h).exists() for h in products)
    assert not re.search(r"@import|<link|<script[^>]+src=", html)  # scripts inline only
    # the only url()s: vendored Leaflet's rules for markers and its layers control, which the
    # report does not use (so nothing is fetched: the Chromium test runs offline)
    assert set(re.findall(r"url\(([^)]*)\)", html)) <= LEAFLET_UNUSED
    assert not list(report.parent.glob(".report.html.part*"))


def test_the_report_loads_in_headless_chromium_without_errors(report):
    with _page(report.as_uri()) as (page, errors):
        headings = page.locator("h2").all_inner_texts()
        sizes = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert errors == []
    assert headings == SECTIONS
    assert len(sizes) >= 6 and all(ok and w > 0 and h > 0 for ok, w, h in sizes)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


WIDTHS = "imgs => imgs.map(i => [i.alt, i.naturalWidth, i.clientWidth])"
FIGURES = "label.zoom img"  # the figures (the interactive views' overlays are Leaflet's)


@pytest.mark.parametrize("viewport", [1280, 480])
def test_every_figure_is_legible_at_100_percent_or_enlarges_on_a_click(report, viewport):
    """No figure is shown shrunk by more than 1.5 x unless a click shows it at its own size
    (sideways scrolling in its frame) and another click fits it to the page again."""
    with _page(report.as_uri(), viewport) as (page, errors):
        imgs = page.locator(FIGURES)
        page_w = "document.documentElement.scrollWidth"
        before = page.evaluate(page_w)
        shrunk = []
        for i, (alt, natural, shown) in enumerate(page.eval_on_selector_all(FIGURES, WIDTHS)):
            assert natural > 0 and shown > 0, alt
            if natural <= 1.5 * shown:
                continue
            shrunk.append(alt)
            imgs.nth(i).click()
            _, natural2, enlarged = page.eval_on_selector_all(FIGURES, WIDTHS)[i]
            assert enlarged == natural2 == natural, alt  # at its own size
            frame = imgs.nth(i).evaluate("i => i.parentElement.scrollWidth")
            assert frame >= natural > viewport  # its frame scrolls sideways, not the page:
            assert page.evaluate(page_w) == before
            imgs.nth(i).click()
            assert page.eval_on_selector_all(FIGURES, WIDTHS)[i][2] == shown, alt
    assert errors == []
    if viewport < 1000:  # the transition figure is much wider than such a page
        assert "Transitions" in shrunk


class _Tables(HTMLParser):
    """Each table's header (or None) and its rows of (is-number, text) cells."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self.cell: list | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"head": None, "rows": []})
        elif tag == "thead":
            self.tables[-1]["head"] = []
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self.cell = [dict(attrs).get("class") == "n", ""]

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1]["rows"][-1].append(tuple(self.cell))
            self.cell = None


NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})*(?:\.(\d+))?")


def _decimals(text: str) -> int | None:
    """Decimals of a number as the report writes it (None: a dash or "< 0.001"); fails on any
    other way of writing one (no separators, scientific notation)."""
    if text == "–" or re.fullmatch(r"< 0\.0*1", text):
        return None
    m = NUMBER.fullmatch(text)
    assert m, f"{text!r} is not written as a number of the report"
    return len(m.group(1) or "")


def test_every_table_column_has_one_number_format(report):
    parser = _Tables()
    parser.feed(report.read_text())
    checked = 0
    for t in parser.tables:
        body = [r for r in t["rows"] if r and not all(not n and not x for n, x in r)]
        if t["head"] is None:  # a key-value table: each value a number of the report
            for r in body:
                if r[-1][0]:
                    _decimals(r[-1][1])
            continue
        body = body[1:]  # the header row
        for j in range(1, max(len(r) for r in body)):
            formats = {_decimals(r[j][1]) for r in body if j < len(r) and r[j][0]}
            formats.discard(None)
            assert len(formats) <= 1, (t["rows"][0], j, formats)
            checked += bool(formats)
    assert checked >= 30  # every table of every section: numbers right-aligned and checked


def test_the_map_figure_has_coordinates_a_scale_bar_and_the_crs(built):
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    with rasterio.open(built.map) as src:
        epsg, bounds = src.crs.to_epsg(), src.bounds
    html = built.html.read_text()
    captions = re.findall(r'<img src="data:[^"]*" alt="([^"]*)"', html)
    maps = [c for c in captions if c.startswith("Land-cover map")]
    assert len(maps) == 1 and f"(EPSG:{epsg})" in maps[0] and "scale bar" in maps[0]
    p = class_preview(built.map, width_px=1000)
    ax = p.figure.axes[0]
    assert f"EPSG:{epsg}" in ax.get_xlabel() and p.crs in maps[0]
    assert "easting (m)" in ax.get_xlabel() and ax.get_ylabel() == "northing (m)"
    x0, x1 = sorted(ax.get_xlim())
    assert (x0, x1) == pytest.approx((bounds.left, bounds.right))
    ticks = [float(t.get_text()) for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(x0 <= x <= x1 for x in ticks)  # map coordinates, no offset
    bars = [a for a in ax.artists if isinstance(a, AnchoredSizeBar)]
    assert len(bars) == 1
    (length,) = {r.get_width() for r in bars[0].size_bar.get_children()}
    assert length_label(length) == p.scale and p.scale in maps[0]
    assert 0.1 <= length / (bounds.right - bounds.left) <= 0.25
    assert re.fullmatch(r"[125]0* k?m", p.scale)
    assert len(ax.get_legend().get_texts()) >= 3  # the classes


def test_a_geographic_map_has_a_scale_bar_in_metres_and_one_without_a_crs_has_a_note(
    tmp_path,
):
    arr = np.tile(np.arange(1, 6, dtype=np.uint8).repeat(20), (80, 1))  # 80 x 100
    geo = _cog(tmp_path / "geo.tif", arr, "EPSG:4326", from_origin(10.0, 60.0, 1e-4, 1e-4))
    p = class_preview(geo, width_px=640)
    ax = p.figure.axes[0]
    assert p.crs == "WGS 84 (EPSG:4326)" and "longitude" in ax.get_xlabel()
    (bar,) = [a for a in ax.artists if a.__class__.__name__ == "AnchoredSizeBar"]
    (deg,) = {r.get_width() for r in bar.size_bar.get_children()}
    metres = float(p.scale.split()[0]) * (1000 if p.scale.endswith("km") else 1)
    # 1e-2 degrees of longitude at 60 degrees north: about 557 m
    assert deg * 111_320 * np.cos(np.radians(59.996)) == pytest.approx(metres, rel=0.01)
    plain = tmp_path / "plain.tif"
    with rasterio.open(geo) as src:
        prof = {
            **src.profile,
            "driver": "GTiff",
            "crs": None,
            "transform": from_origin(0, 80, 1, 1),
        }
        with rasterio.open(plain, "w", **prof) as dst:
            dst.write(src.read())
            dst.update_tags(1, **src.tags(1))
    q = class_preview(plain, width_px=640)
    assert q.scale is None and "no CRS" in q.note and "no CRS" in q.caption("m")
    assert not q.figure.axes[0].artists


def test_paths_are_relative_to_the_report_folder(built):
    html = built.html.read_text()
    for absolute in (str(built.root), str(built.root.parent), os.path.dirname(built.labels)):
        assert absolute not in html
    assert os.path.relpath(built.labels, built.root) in html  # outside the folder: ../
    assert REMOTE in html  # remote URLs stay as they are
    assert "<td>my data/labels.gpkg</td>" in html
    assert "bundle" in html and "workflow.yml" in html
    assert 'href="accuracy/report.json"' in html and 'href="after.tif"' in html

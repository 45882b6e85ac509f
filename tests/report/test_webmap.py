"""The report's interactive map: each class overlay is exactly the class raster's pixels, and
in headless Chromium, offline, the view pans, zooms, toggles classes and layers, reads out
coordinates in the map's CRS and logs no error (skipped where Chromium or playwright is
absent)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import Affine

from geoseg.report.webmap import class_layer, web_map
from tests.report.conftest import _cog
from tests.report.test_report import ARTIFACTS, _page


def _decoded(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def _view_data(html: str, view: str) -> dict:
    m = re.search(rf'<script type="application/json" id="{view}-data">(.*?)</script>', html, re.S)
    assert m, view
    return json.loads(m.group(1))


@pytest.mark.parametrize("max_px", [1024, 64])
def test_each_class_overlay_is_exactly_that_class(built, max_px):
    layer = class_layer(built.map, "map", max_px=max_px)
    with rasterio.open(built.map) as src:
        scale = min(1.0, max_px / max(src.height, src.width))
        shape = (round(src.height * scale), round(src.width * scale))
        data, b = src.read(1, out_shape=shape), src.bounds
    present = [int(v) for v in np.unique(data) if v != 0]
    assert [c["id"] for c in layer["classes"]] == present
    for c in layer["classes"]:
        rgba = _decoded(c["uri"])
        assert rgba.shape == (*shape, 4)
        assert np.array_equal(rgba[..., 3] == 255, data == c["id"]), c["name"]
        assert c["pixels"] == int((data == c["id"]).sum())
        assert tuple(rgba[data == c["id"]][0, :3]) == tuple(
            int(c["color"][i : i + 2], 16) for i in (1, 3, 5)
        )
    assert layer["bounds"] == {"left": b.left, "right": b.right, "bottom": b.bottom, "top": b.top}


def test_a_raster_without_crs_is_shown_north_up_in_columns_and_rows(tmp_path):
    arr = np.zeros((30, 50), np.uint8)
    arr[:10] = 1  # the first rows: the top of the view
    arr[10:] = 2
    path = _cog(tmp_path / "pixels.tif", arr, None, Affine.identity())
    w = web_map([("map", path)], max_px=1024)
    assert w["units"] == "px" and not w["scale"] and w["down"]
    assert w["bounds"] == {"left": 0.0, "right": 50.0, "bottom": -30.0, "top": -0.0}


def test_the_report_embeds_the_views_and_their_script(report):
    html = report.read_text()
    data = _view_data(html, "webmap-map")
    assert data["scene"] and data["scene"]["uri"].startswith("data:image/png;base64,")
    assert [x["title"] for x in data["layers"]] == ["Land-cover map"]
    change = _view_data(html, "webmap-change")
    assert [x["title"] for x in change["layers"]] == ["Change mask", "Later date", "Earlier date"]
    assert html.count("Leaflet 1.9.4") >= 2  # the vendored file's banner and the captions
    assert "sourceMappingURL" not in html
    assert not re.search(r"<script[^>]+src=|<link", html)
    markup = re.sub(r"<script\b.*?</script>|<style\b.*?</style>", "", html, flags=re.S)
    assert not re.search(r"https?://", markup)  # (URLs in Leaflet's code and comments only)


def test_the_view_pans_zooms_and_toggles_offline_in_chromium(report, built):
    with _page(report.as_uri(), offline=True) as (page, errors):
        page.wait_for_function("document.getElementById('webmap-map').geosegMap !== undefined")
        view = page.locator("#webmap-map")
        view.scroll_into_view_if_needed()
        layers = "document.querySelectorAll('#webmap-map img.class-layer').length"
        n = page.evaluate(layers)
        n_classes = len(_view_data(report.read_text(), "webmap-map")["layers"][0]["classes"])
        assert n == n_classes >= 2
        assert page.evaluate("document.querySelectorAll('#webmap-map img.scene').length") == 1
        loaded = (
            "[...document.querySelectorAll('#webmap-map img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        )
        page.wait_for_function(loaded)
        ARTIFACTS.mkdir(exist_ok=True)
        view.screenshot(path=str(ARTIFACTS / "webmap.png"))

        # zoom: the + button
        zoom = "document.getElementById('webmap-map').geosegMap.getZoom()"
        z0 = page.evaluate(zoom)
        page.locator("#webmap-map .leaflet-control-zoom-in").click()
        page.wait_for_function(f"{zoom} > {z0}")
        page.wait_for_function("!document.querySelector('#webmap-map .leaflet-zoom-anim')")

        # pan: a drag moves the centre, in map units
        center = (
            "(() => { const c = document.getElementById('webmap-map').geosegMap.getCenter();"
            " return [c.lng, c.lat]; })()"
        )
        c0 = page.evaluate(center)
        box = view.bounding_box()
        x, y = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 120, y + 60, steps=8)
        page.mouse.up()
        c1 = page.evaluate(center)
        assert c1[0] < c0[0] and c1[1] > c0[1]  # dragged right and down: west and north

        # the pointer's coordinates, in the CRS's units, inside the map
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        text = view.locator(".webmap-where").inner_text()
        e, n_ = (float(v.replace(",", "")) for v in re.findall(r"[EN] ([\d,.-]+)", text))
        with rasterio.open(built.map) as src:
            b = src.bounds
            assert src.crs.to_string() in text or "EPSG" in text
        assert b.left - 1e4 < e < b.right + 1e4 and b.bottom - 1e4 < n_ < b.top + 1e4

        # one class off, then on; then the whole layer off
        first = view.locator("input[data-class]").first
        name = first.get_attribute("data-class")
        first.uncheck()
        assert page.evaluate(layers) == n - 1
        alts = page.eval_on_selector_all("#webmap-map img.class-layer", "l => l.map(i => i.alt)")
        assert f"Land-cover map: {name}" not in alts
        first.check()
        assert page.evaluate(layers) == n
        view.locator("label.webmap-group input").first.uncheck()
        assert page.evaluate(layers) == 0
        view.locator("label.webmap-group input").first.check()
        assert page.evaluate(layers) == n

        # the change view: its first layer (the change mask) shown, the dates one click away
        change = "document.querySelectorAll('#webmap-change img.class-layer').length"
        shown = page.evaluate(change)
        assert shown >= 1
        page.locator("#webmap-change label.webmap-group input").nth(1).check()
        assert page.evaluate(change) > shown
    assert errors == []

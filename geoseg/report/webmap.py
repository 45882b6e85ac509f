"""The report's interactive map: class maps (and change maps) over the scene in a pannable,
zoomable Leaflet view with a legend, a toggle per class and per layer, an opacity slider, the
pointer's coordinates and a scale bar; it works offline from the report file alone.

Leaflet (BSD-2-Clause) is vendored from its npm registry package in ``report/vendor/leaflet``
(see the README there) and inlined into the page with ``templates/webmap.js``, which builds the
views; nothing is fetched at view time. Each class of a layer is its own transparent PNG
overlay (a data URI), so a class toggles by adding or removing its layer and the browser never
decodes class values from pixels (which colour management could alter).

Coordinates are the raster's CRS units: Leaflet's ``CRS.Simple`` scaled so that zoom 0 shows
one raster pixel per screen pixel, so the scale bar is in metres for a projected CRS (none for
a geographic one or a raster without a CRS, whose coordinates are columns and rows).
"""

from __future__ import annotations

import io
import re
from functools import cache
from importlib.resources import files

import numpy as np

from geoseg.core.classes import ClassList
from geoseg.io.scene import open_raster
from geoseg.report.figures import _classes_of, crs_label, data_uri

VIEW_HEIGHT_PX = 520


@cache
def assets() -> dict[str, str]:
    """Leaflet's JS and CSS and geoseg's view code, as the page inlines them."""
    root = files("geoseg.report")
    js = (root / "vendor" / "leaflet" / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)  # no map file to look for
    return {
        "leaflet_js": js,
        "leaflet_css": (root / "vendor" / "leaflet" / "leaflet.css").read_text(encoding="utf-8"),
        "view_js": (root / "templates" / "webmap.js").read_text(encoding="utf-8"),
    }


def _png(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", optimize=True)
    return data_uri(buf.getvalue())


def _frame(src) -> tuple[dict, bool]:
    """The raster's bounds as the view places it, and whether y grows downwards (a raster
    without a CRS: its rows are shown as negative y, so north stays up)."""
    b = src.bounds
    down = src.transform.e > 0
    if down:
        return {"left": b.left, "right": b.right, "bottom": -b.bottom, "top": -b.top}, True
    return {"left": b.left, "right": b.right, "bottom": b.bottom, "top": b.top}, False


def class_layer(
    path, title: str, *, max_px: int = 1024, classes: ClassList | None = None
) -> dict | None:
    """One layer of the view: the class raster ``path`` read at most ``max_px`` on its longer
    side (its nearest overview), one overlay per class present (``uri``: colour where the
    class is, transparent elsewhere) with its pixel count; None when its classes are unknown."""
    read = _read_layer(path, title, max_px, classes)
    return read[0] if read else None


def _read_layer(path, title: str, max_px: int, classes: ClassList | None):
    """:func:`class_layer`'s layer and the raster's CRS (not part of the page's data)."""
    with open_raster(path, warn_no_crs=False) as src:
        cl = classes or _classes_of(src)
        if cl is None:
            return None
        scale = min(1.0, max_px / max(src.height, src.width))
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        data = src.read(1, out_shape=shape)
        nodata = src.nodata
        bounds, down = _frame(src)
        res, crs = abs(src.transform.a), src.crs
    valid = np.ones(data.shape, bool) if nodata is None else data != nodata
    out = []
    for c in cl.classes:
        mask = valid & (data == c.id)
        n = int(mask.sum())
        if not n:
            continue
        rgba = np.zeros((*data.shape, 4), dtype=np.uint8)
        rgba[mask] = (*c.rgb, 255)
        out.append({"id": c.id, "name": c.name, "color": c.color, "pixels": n, "uri": _png(rgba)})
    layer = {"title": title, "bounds": bounds, "down": down, "res": res, "shape": list(shape)}
    return {**layer, "classes": out}, crs


def _rgb_bands(src) -> list[int]:
    """Red, green and blue by the bands' descriptions or colour interpretation, else bands
    1-3, else band 1 alone."""
    names = [(d or "").strip().lower() for d in src.descriptions]
    want = ("red", "green", "blue")
    if all(any(w == n or n.startswith(w) for n in names) for w in want):
        return [next(i + 1 for i, n in enumerate(names) if n == w or n.startswith(w)) for w in want]
    interp = [ci.name for ci in src.colorinterp]
    if all(w in interp for w in want):
        return [interp.index(w) + 1 for w in want]
    return [1, 2, 3] if src.count >= 3 else [1]


def scene_layer(path, layer: dict, shape: tuple[int, int]) -> dict | None:
    """The scene under ``layer`` as an RGB quicklook of ``shape`` pixels (2-98 % stretch per
    band over its valid pixels); None where it cannot be read."""
    from rasterio.windows import from_bounds

    try:
        with open_raster(path, warn_no_crs=False) as src:
            b = layer["bounds"]
            # the raster's own bounds (a pixel frame's y back to rows)
            top, bottom = (-b["top"], -b["bottom"]) if layer["down"] else (b["top"], b["bottom"])
            win = from_bounds(b["left"], bottom, b["right"], top, transform=src.transform)
            bands = _rgb_bands(src)
            data = src.read(bands, window=win, out_shape=(len(bands), *shape), boundless=True)
            mask = src.read_masks(bands[0], window=win, out_shape=shape, boundless=True) > 0
    except Exception:  # noqa: BLE001 - the view shows the maps without it, and says so
        return None
    rgb = np.zeros((*shape, 4), dtype=np.uint8)
    for i, band in enumerate(data):
        v = band[mask].astype(np.float64)
        if v.size:
            lo, hi = np.percentile(v, (2, 98))
            scaled = (band.astype(np.float64) - lo) / max(hi - lo, 1e-12)
            rgb[..., i] = np.clip(scaled * 255, 0, 255).astype(np.uint8)
    if len(data) == 1:
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]
    rgb[..., 3] = np.where(mask, 255, 0)
    label = "bands " + ", ".join(map(str, bands))
    return {"uri": _png(rgb), "bounds": layer["bounds"], "bands": label}


def web_map(layers: list[tuple[str, str]], *, scene=None, max_px: int = 1024) -> dict | None:
    """The view's data: each (title, class raster) of ``layers`` that exists and has a class
    list, over ``scene`` (a raster path) where given; None when no layer can be shown. Only
    the first layer is shown at first; the others are one click away."""
    read = [x for x in (_read_layer(p, t, max_px, None) for t, p in layers if p) if x]
    if not read:
        return None
    shown = [layer for layer, _ in read]
    first, crs = read[0]
    units = "px" if crs is None else ("deg" if crs.is_geographic else "m")
    metres = False
    if units == "m":  # Leaflet's scale bar reads the CRS units as metres
        try:
            metres = abs(float(crs.linear_units_factor[1]) - 1.0) < 1e-9
        except Exception:  # noqa: BLE001 - no linear units
            units = "units"
    return {
        "bounds": first["bounds"],
        "down": first["down"],
        "res": first["res"] or 1.0,
        "crs": crs_label(crs),
        "units": units if (units != "m" or metres) else "units",
        "scale": metres,
        "height": VIEW_HEIGHT_PX,
        "layers": shown,
        "scene": scene_layer(scene, first, tuple(first["shape"])) if scene else None,
    }

"""Pictures for the HTML report: class-map previews with a legend, and PNGs as data URIs.

A preview reads the raster's overview nearest the wanted size (rasterio picks it from
``out_shape``), so a map of any size costs one small read; classes are coloured with the class
list (the CLASSES tag geoseg writes, or one given) and nodata is transparent.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from geoseg.core.classes import ClassInfo, ClassList, load_classes
from geoseg.io.scene import _open


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_uri(path: str | Path | None) -> str | None:
    """A PNG file as a data URI, or None when it is absent."""
    if not path or not Path(path).is_file():
        return None
    return data_uri(Path(path).read_bytes())


def _classes_of(src) -> ClassList | None:
    tag = src.tags(1).get("CLASSES")
    if tag:
        try:
            return load_classes(json.loads(tag))
        except Exception:  # noqa: BLE001 - a damaged tag: fall back to the palette
            pass
    try:
        cmap = src.colormap(1)
    except ValueError:
        return None
    return ClassList.model_construct(
        classes=[
            ClassInfo.model_construct(
                id=v, name=str(v), color="#{:02x}{:02x}{:02x}".format(*rgba[:3])
            )
            for v, rgba in cmap.items()
            if rgba[3] and v != src.nodata
        ]
    )


def read_preview(path: str | Path, max_px: int) -> tuple[np.ndarray, float | None, object]:
    """Band 1 of ``path`` at most ``max_px`` on its longer side, its nodata and the open
    dataset's class list (None if it has neither CLASSES tag nor palette)."""
    with _open(str(path)) as src:
        scale = min(1.0, max_px / max(src.height, src.width))
        shape = (max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        data = src.read(1, out_shape=shape)
        return data, src.nodata, _classes_of(src)


def class_preview(
    path: str | Path,
    *,
    classes: ClassList | None = None,
    max_px: int = 1024,
    title: str | None = None,
) -> bytes | None:
    """A PNG of the class raster ``path`` with a legend of the classes present, or None when
    its classes are unknown."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    data, nodata, own = read_preview(path, max_px)
    cl = classes or own
    if cl is None:
        return None
    rgba = np.zeros((*data.shape, 4), dtype=np.uint8)
    present = []
    valid = np.ones(data.shape, bool) if nodata is None else data != nodata
    for c in cl.classes:
        mask = valid & (data == c.id)
        if mask.any():
            rgba[mask] = (*c.rgb, 255)
            present.append(c)
    h, w = data.shape
    width = 7.5
    fig = Figure(figsize=(width + 2.6, max(2.5, width * h / w)))
    ax = fig.add_subplot()
    ax.imshow(rgba, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    ax.legend(
        handles=[Patch(facecolor=c.color, edgecolor="#555", label=c.name) for c in present]
        or [Patch(facecolor="none", label="(no classes)")],
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
        fontsize=8,
        frameon=False,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()

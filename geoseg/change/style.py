"""Legends of the change products: from-to codes and the changed/unchanged/uncertain mask.

From-to code = ``from_id * 100 + to_id`` (class ids 0..99), stored as UInt16 with nodata
65535, which no code reaches (the largest is 9999). The legend names every code ("Forest ->
Developed"; "Forest (no change)") and colours a change by the class it turned into and a
persistence by a pale tint of its class; the changes into one class are shades of that class's
colour, one per source class, so they group by target and stay distinct. It is a
:class:`ClassList` of codes built without the class-id validation (codes exceed the uint8 id
range), so the existing QGIS-style and category-name writers of :mod:`geoseg.io.style` serve it
unchanged. The COG carries the colours as a TIFF palette too (GeoTIFF allows one on UInt16; it
has 65,536 entries, ~384 KiB per image directory), so clients without the ``.qml`` see them;
GDAL reads the names from the ``.aux.xml``.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

from geoseg.core.classes import ClassInfo, ClassList, load_classes
from geoseg.io.files import atomic_write
from geoseg.io.style import category_aux_xml, check_style_free, raster_qml

CODE_FACTOR = 100
CODE_NODATA = 65535
MAX_CLASS_ID = CODE_FACTOR - 1

UNCHANGED, CHANGED, UNCERTAIN = 1, 2, 3
STATUS_NODATA = 0
STATUS_CLASSES = load_classes(
    [
        {"id": UNCHANGED, "name": "unchanged", "color": "#d9d9d9"},
        {"id": CHANGED, "name": "changed", "color": "#e31a1c"},
        {"id": UNCERTAIN, "name": "uncertain", "color": "#fdae61"},
    ]
)


def code(from_id: int, to_id: int) -> int:
    return from_id * CODE_FACTOR + to_id


def split_code(value: int) -> tuple[int, int]:
    return divmod(int(value), CODE_FACTOR)


def _tint(color: str, keep: float = 0.3) -> str:
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - v) * keep):02x}" for v in rgb)


def _shade(color: str, k: int, n: int) -> str:
    """The ``k``-th of ``n`` shades of ``color``: its hue and saturation, the lightness spread
    from dark to a little lighter than the class (below the pale tints of persistence)."""
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    if n <= 1:
        return color
    lo, hi = max(0.15, min(light, 0.72) - 0.3), min(0.72, max(light, 0.3) + 0.15)
    rgb = colorsys.hls_to_rgb(h, lo + (hi - lo) * k / (n - 1), s)
    return "#" + "".join(f"{round(v * 255):02x}" for v in rgb)


def transition_legend(classes: ClassList, changes_only: bool = False) -> ClassList:
    """One entry per from-to code of ``classes`` (id = code), in from-then-to order."""
    others = len(classes.classes) - 1
    entries = []
    for a in classes.classes:
        for b in classes.classes:
            if a.id == b.id and changes_only:
                continue
            name = f"{a.name} (no change)" if a.id == b.id else f"{a.name} -> {b.name}"
            if a.id == b.id:
                color = _tint(a.color)
            else:  # the k-th source class (in class order, b skipped) into b
                k = sum(1 for c in classes.classes if c.id < a.id and c.id != b.id)
                color = _shade(b.color, k, others)
            entries.append(ClassInfo.model_construct(id=code(a.id, b.id), name=name, color=color))
    return ClassList.model_construct(classes=entries)


def legend_palette(legend: ClassList) -> dict[int, tuple[int, int, int, int]]:
    """The legend as a TIFF palette: each code's colour, opaque."""
    return {c.id: (*(int(c.color[i : i + 2], 16) for i in (1, 3, 5)), 255) for c in legend.classes}


def category_names(legend: ClassList) -> list[str]:
    """GDAL category names indexed by pixel value, 0..largest code."""
    names = [""] * (max(legend.ids) + 1)
    for c in legend.classes:
        names[c.id] = c.name
    return names


def write_legend_sidecars(raster: Path, legend: ClassList) -> list[Path]:
    """``<raster>.aux.xml`` (category names) and ``<stem>.qml`` beside ``raster``, each
    written under a temporary name and renamed."""
    aux, qml = Path(f"{raster}.aux.xml"), raster.with_suffix(".qml")
    check_style_free(raster, "raster")
    atomic_write(aux, category_aux_xml(category_names(legend)).encode())
    atomic_write(qml, raster_qml(legend).encode())
    return [aux, qml]

"""Legends of the change products: from-to codes and the changed/unchanged/uncertain mask.

From-to code = ``from_id * 100 + to_id`` (class ids 0..99), stored as UInt16 with nodata
65535, which no code reaches (the largest is 9999). The legend names every code ("Forest ->
Developed"; "Forest (no change)") and colours a change by the class it turned into and a
persistence by a pale tint of its class. It is a :class:`ClassList` of codes built without the
class-id validation (codes exceed the uint8 id range), so the existing QGIS-style and
category-name writers of :mod:`geoseg.io.style` serve it unchanged. No TIFF palette: GDAL can
write one for UInt16, but it then has 65,536 entries (~384 KiB in every file); GDAL reads the
names from the ``.aux.xml`` and QGIS the colours from the ``.qml``.
"""

from __future__ import annotations

from pathlib import Path

from geoseg.core.classes import ClassInfo, ClassList, load_classes
from geoseg.io.files import atomic_write
from geoseg.io.style import category_aux_xml, raster_qml

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


def transition_legend(classes: ClassList, changes_only: bool = False) -> ClassList:
    """One entry per from-to code of ``classes`` (id = code), in from-then-to order."""
    entries = []
    for a in classes.classes:
        for b in classes.classes:
            if a.id == b.id and changes_only:
                continue
            name = f"{a.name} (no change)" if a.id == b.id else f"{a.name} -> {b.name}"
            color = _tint(a.color) if a.id == b.id else b.color
            entries.append(ClassInfo.model_construct(id=code(a.id, b.id), name=name, color=color))
    return ClassList.model_construct(classes=entries)


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
    atomic_write(aux, category_aux_xml(category_names(legend)).encode())
    atomic_write(qml, raster_qml(legend).encode())
    return [aux, qml]

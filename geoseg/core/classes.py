"""Class lists (id, name, colour): loading, validation and palettes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_serializer, model_validator

from geoseg.errors import GeoSegError

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
# Distinct default colours (Tableau 10 then a few more) for classes given without one.
DEFAULT_COLORS = [
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#1f77b4",
    "#2ca02c",
    "#d62728",
    "#9467bd",
]


class ClassInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    name: str
    color: str = ""
    # a countable object class (buildings, trees): its connected regions are instances
    # (geoseg instances); absent = stuff (land, water), and dumped only when set
    thing: bool = False

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        out = handler(self)
        if not out.get("thing"):
            out.pop("thing", None)
        return out

    @field_validator("id")
    @classmethod
    def _id_range(cls, v: int) -> int:
        if not 0 <= v <= 254:
            raise ValueError(f"class id {v} is outside 0..254 (uint8 output, 255 reserved)")
        return v

    @field_validator("color")
    @classmethod
    def _color(cls, v: str) -> str:
        if v and not _HEX.match(v):
            raise ValueError(f"colour {v!r} is not of the form #rrggbb")
        return v.lower()

    @property
    def rgb(self) -> tuple[int, int, int]:
        c = self.color.lstrip("#")
        return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


class ClassList(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classes: list[ClassInfo]

    @model_validator(mode="after")
    def _check(self) -> ClassList:
        if not self.classes:
            raise ValueError("the class list is empty")
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate class ids in {ids}")
        for i, c in enumerate(self.classes):
            if not c.color:
                c.color = DEFAULT_COLORS[i % len(DEFAULT_COLORS)]
        return self

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.classes]

    @property
    def nodata(self) -> int:
        """Output nodata value: 0 when no class uses it (the GIS habit), else 255."""
        return 255 if 0 in self.ids else 0

    def to_json(self) -> str:
        """The list as a COG's CLASSES tag and an array's ``classes`` attribute hold it: id,
        name, colour, and ``thing`` where set."""
        return json.dumps(
            [
                {"id": c.id, "name": c.name, "color": c.color}
                | ({"thing": True} if c.thing else {})
                for c in self.classes
            ]
        )

    @property
    def things(self) -> list[int]:
        """Ids of the classes marked ``thing``."""
        return [c.id for c in self.classes if c.thing]

    def with_things(self, names: list[str]) -> ClassList:
        """This list with the classes named (or numbered) in ``names`` marked ``thing``."""
        want = {n.strip().lower() for n in names if n.strip()}
        known = {c.name.lower() for c in self.classes} | {str(c.id) for c in self.classes}
        bad = sorted(want - known)
        if bad:
            raise GeoSegError(
                f"unknown class {bad[0]!r} in --things: use names or ids of "
                f"{', '.join(c.name for c in self.classes)}"
            )
        marked = [
            c.model_copy(update={"thing": c.thing or c.name.lower() in want or str(c.id) in want})
            for c in self.classes
        ]
        return ClassList(classes=marked)

    def name_of(self, cid: int) -> str:
        for c in self.classes:
            if c.id == cid:
                return c.name
        raise KeyError(cid)

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        cmap = {c.id: (*c.rgb, 255) for c in self.classes}
        cmap[self.nodata] = (0, 0, 0, 0)
        return cmap

    def category_names(self) -> list[str]:
        """Names indexed by pixel value, 0..max id (GDAL category names)."""
        top = max(self.ids + [self.nodata if self.nodata != 255 else 0])
        names = [""] * (top + 1)
        for c in self.classes:
            names[c.id] = c.name
        if self.nodata <= top:
            names[self.nodata] = names[self.nodata] or "nodata"
        return names


def load_classes(source: str | Path | list | dict) -> ClassList:
    """Classes from a JSON file or data: a list of {id, name, color}, {"classes": [...]}, or a
    mapping {"1": "Water", ...} / {"1": {"name": ..., "color": ...}}."""
    data = source
    if isinstance(source, str | Path):
        p = Path(source)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise GeoSegError(
                f"class list {p} does not exist: pass a JSON file of [{{id, name, color}}]"
            ) from None
        except json.JSONDecodeError as e:
            raise GeoSegError(
                f"class list {p} is not valid JSON ({e.msg} at line {e.lineno})"
            ) from None
    if isinstance(data, dict) and "classes" in data:
        data = data["classes"]
    if isinstance(data, dict):
        items = []
        for k, v in data.items():
            item = {"id": int(k)}
            item.update(v if isinstance(v, dict) else {"name": str(v)})
            items.append(item)
        data = items
    try:
        return ClassList(classes=data)
    except ValueError as e:
        raise GeoSegError(f"invalid class list: {_first_error(e)}") from None


def _first_error(e: Exception) -> str:
    errs = getattr(e, "errors", None)
    if callable(errs):
        first = errs()[0]
        loc = ".".join(str(x) for x in first.get("loc", ()))
        return f"{loc}: {first['msg']}" if loc else first["msg"]
    return str(e)

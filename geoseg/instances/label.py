"""``geoseg instances``: a class map in, every object of its thing classes with its own id out.

Each block task labels its own objects (:mod:`geoseg.core.instances`); the client joins the
objects that touch across block edges and numbers every instance in the raster order of its
first pixel (from the blocks' edges and counts: it reads no pixel); a second task per block
writes its ids and polygons; one task streams the ids into a COG. The ids equal a whole-scene
labelling for any block size or worker count. Products: the instance COG (uint32, 0 = none),
optionally polygons (one feature per instance: ``instance_id``, class, area, perimeter, mean
confidence, date) in any vector format geoseg writes, and a JSON summary with the count and
area per class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core.classes import ClassList
from geoseg.core.instances import keep_large, resolve
from geoseg.errors import GeoSegError
from geoseg.instances.blocks import InstanceJob, finish_task, label_task, write_ids_cog
from geoseg.instances.options import InstanceOptions
from geoseg.io.classmap import ClassMap
from geoseg.io.cog import check_output
from geoseg.io.dates import date_from_tags
from geoseg.io.files import atomic_write
from geoseg.io.scene import open_raster
from geoseg.io.staged import staging
from geoseg.io.style import vector_qml
from geoseg.io.vector import check_vector_output, date_column, vector_format, write_polygons
from geoseg.vector.polygons import geod_for, measure


@dataclass
class InstanceResult:
    path: str  # the instance-id COG
    counts: dict[str, int]  # instances per thing class name
    areas: dict[str, float]  # their area per class (hectares, or pixels without a CRS)
    polygons: str | None = None
    summary: str | None = None
    blocks: int = 0
    per_instance: dict = field(default_factory=dict)  # class, area (pixels), first pixel

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def instances(
    classmap: str | Path,
    out: str | Path,
    options: InstanceOptions | None = None,
    *,
    classes: str | Path | ClassList | None = None,
    polygons: str | Path | None = None,
    client=None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    **changes,
) -> InstanceResult:
    """Label the instances of ``classmap``'s thing classes (marked ``thing`` in its class
    list, or named in ``things``) into the COG ``out``; ``polygons``: also a vector layer of
    them (gpkg, shp, parquet, fgb, geojson by suffix). ``options`` and ``changes``:
    :class:`~geoseg.instances.options.InstanceOptions` (``things``, ``connectivity``: 4, the
    default, keeps objects touching at a corner apart, as geoseg's polygons; or 8; ``block``)."""
    o = InstanceOptions.of(options, **changes)
    things, connectivity, block = o.things, o.connectivity, o.block
    cmap = ClassMap.open(classmap, classes)
    cl = cmap.classes.with_things(things) if things else cmap.classes
    if not cl.things:
        raise GeoSegError(
            f"{classmap} marks no class as a thing: name the countable classes with --things "
            f"(e.g. --things {cl.classes[0].name})"
        )
    out = check_output(out, overwrite)
    vfmt = None
    if polygons is not None:
        vfmt = vector_format(polygons)
        polygons = check_vector_output(polygons, vfmt, overwrite)
    with open_raster(str(classmap), warn_no_crs=False) as src:
        tags = src.tags()
    conf = Path(classmap).with_name(f"{Path(classmap).stem}_confidence.tif")
    border = _border_head(classmap, cmap) if o.split else None
    windows = cmap.windows(block)
    describe = name_windows(windows)
    with (
        staging(out.parent, "instances") as stage,
        connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c,
    ):
        job = InstanceJob(
            cmap,
            tuple(cl.things),
            connectivity,
            str(stage),
            str(conf) if conf.exists() else None,
            boundary=border,
            threshold=o.border_threshold,
            grow=o.grow if border else 0,
        )
        objs = run_tasks(c, label_task, [(w,) for w in windows], args=(job,), describe=describe)
        maps, info = keep_large(*resolve(objs, connectivity), o.min_pixels)
        around = _around(windows, maps) if job.grow else [()] * len(windows)
        parts = run_tasks(
            c,
            finish_task,
            list(zip(windows, maps, around, strict=True)),
            args=(job,),
            describe=describe,
        )
        for p in parts:  # the border pixels each instance took back
            np.add.at(info["area"], p["grown_id"].astype(np.int64) - 1, p["grown_n"])
        counts, areas = _per_class(cl, cmap, info)
        ids_tags = {
            **{k: v for k, v in tags.items() if k.startswith("GEOSEG_")},
            "GEOSEG_INSTANCE_CLASSES": json.dumps([cl.name_of(k) for k in cl.things]),
            "GEOSEG_INSTANCE_COUNTS": json.dumps(counts),
            "GEOSEG_INSTANCE_CONNECTIVITY": str(connectivity),
            "GEOSEG_INSTANCE_MIN_PIXELS": str(o.min_pixels),
        }
        if border:
            ids_tags["GEOSEG_INSTANCE_SPLIT"] = json.dumps(
                {"boundary": Path(border).name, "threshold": o.border_threshold, "grow": o.grow}
            )
        [path] = run_tasks(
            c, write_ids_cog, [(str(out), windows, ids_tags)], args=(job,), doing="writing"
        )
    res = InstanceResult(path, counts, areas, blocks=len(windows), per_instance=info)
    if polygons is not None:
        table, multi = _table(parts, info, cl, cmap, tags, classmap)
        res.polygons = str(
            write_polygons(
                polygons,
                table,
                fmt=vfmt,
                crs_wkt=cmap.crs.to_wkt() if cmap.crs else None,
                geometry_type="MultiPolygon" if multi else "Polygon",
                qml=vector_qml(cl),
            )
        )
    summary = out.with_suffix(".json")
    doc = {
        "classmap": str(classmap),
        "instances": str(out),
        "connectivity": connectivity,
        "min_pixels": o.min_pixels,
        "split": {"boundary": border, "threshold": o.border_threshold, "grow": o.grow}
        if border
        else None,
        "count": res.total,
        "per_class": {k: {"count": counts[k], "area": areas[k]} for k in counts},
        "area_unit": "ha" if cmap.pixel_area_ha() else "pixels",
    }
    atomic_write(summary, (json.dumps(doc, indent=2) + "\n").encode())
    res.summary = str(summary)
    return res


def _border_head(classmap, cmap: ClassMap) -> str | None:
    """The map's border head (``<map>_boundary.tif`` beside it), checked against its grid."""
    path = Path(classmap).with_name(f"{Path(classmap).stem}_boundary.tif")
    if not path.exists():
        return None
    with open_raster(str(path), warn_no_crs=False) as src:
        shape = (src.height, src.width)
    if shape != (cmap.height, cmap.width):
        raise GeoSegError(
            f"{path} is {shape[0]} x {shape[1]} pixels and the map {cmap.height} x "
            f"{cmap.width}: re-run predict to write both, or pass --no-split"
        )
    return str(path)


def _around(windows: list, maps: list) -> list[list]:
    """Per window (a regular grid, row by row), its (up to 8) neighbours' windows and id
    tables: what growing needs (a step of at most 16 pixels, blocks of at least 32)."""
    sr, sc = windows[0].height, windows[0].width
    at = {(w.row // sr, w.col // sc): i for i, w in enumerate(windows)}
    out = []
    for w in windows:
        bi, bj = w.row // sr, w.col // sc
        nb = [
            at[(bi + di, bj + dj)]
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
            if (di or dj) and (bi + di, bj + dj) in at
        ]
        out.append([(windows[j], maps[j]) for j in nb])
    return out


def _per_class(cl, cmap: ClassMap, info: dict) -> tuple[dict[str, int], dict[str, float]]:
    px = cmap.pixel_area_ha() or 1.0
    counts, areas = {}, {}
    for k in cl.things:
        sel = info["class"] == k
        counts[cl.name_of(k)] = int(sel.sum())
        areas[cl.name_of(k)] = round(float(info["area"][sel].sum()) * px, 6)
    return counts, areas


def _table(parts: list[dict], info: dict, cl, cmap: ClassMap, tags: dict, classmap):
    """One row per instance: the pieces of an instance cut by blocks joined (exactly: they
    share pixel edges), with its id, class, area, perimeter, confidence and date."""
    wkb = [w for p in parts for w in p["wkb"]]
    ids = np.concatenate([p["id"] for p in parts]) if parts else np.zeros(0, np.int64)
    n = len(info["class"])
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object)) if wkb else np.zeros(0, object)
    order = np.argsort(ids, kind="stable")
    ids, geoms = ids[order], geoms[order]
    starts = np.searchsorted(ids, np.arange(1, n + 1))
    ends = np.searchsorted(ids, np.arange(1, n + 1), side="right")
    joined = np.empty(n, dtype=object)
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        joined[i] = (
            geoms[a] if b - a == 1 else shapely.union_all(geoms[a:b])
        )  # edges split unequally: not a coverage
    multi = bool((shapely.get_type_id(joined) != 3).any()) if n else False
    if multi:
        joined = np.array(
            [g if shapely.get_type_id(g) == 6 else shapely.multipolygons([g]) for g in joined],
            dtype=object,
        )
    crs = cmap.crs
    if crs is None:  # pixel units, taken as metres (as geoseg vectorize)
        area, perim = measure(joined, 1.0)
    elif crs.is_geographic:
        area, perim = measure(joined, None, geod_for(crs.to_wkt()))
    else:
        area, perim = measure(joined, float(crs.linear_units_factor[1]))
    conf = np.full(n, np.nan)
    if parts and "conf_id" in parts[0]:
        s, k = np.zeros(n + 1), np.zeros(n + 1)
        for p in parts:
            np.add.at(s, p["conf_id"], p["conf_sum"])
            np.add.at(k, p["conf_id"], p["conf_n"])
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = (s / k)[1:]
    cls = info["class"].astype(np.int64)
    date = date_from_tags(tags, last_resort=False)
    cols = {
        "geom": pa.array(shapely.to_wkb(joined), type=pa.binary()),
        "instance_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "class_id": pa.array(cls),
        "class_name": pa.array([cl.name_of(int(k)) for k in cls], type=pa.string()),
        "area_ha": pa.array(np.round(area, 6)),
        "perim_m": pa.array(np.round(perim, 3)),
        "pixels": pa.array(info["area"].astype(np.int64)),
        "confidence": pa.array(np.round(conf, 4), mask=np.isnan(conf)),
        "date": date_column(date, n),
    }
    return pa.table(cols), multi

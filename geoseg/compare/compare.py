"""``geoseg compare``: several class maps scored on the same reference pixels (or points), side
by side, with McNemar's test for every pair and a disagreement map per pair.

Maps share one class list; a map on another grid is read on the first map's grid block by
block (nearest neighbour, :class:`geoseg.io.grid.MapOnGrid`), as ``evaluate`` and ``change``
read theirs, and the report says so. A reference unit counts for every map only if
every map has a class there (the maps are compared on exactly the same units). One Dask task
per block reads all maps and the reference there and returns, per map, a confusion matrix
(rows = map, columns = reference) and, per pair (A, B), the counts of units both right, only
A right, only B right and both wrong; it stages the pair codes, which one task per pair
streams into a disagreement COG. Metrics come from :mod:`geoseg.core.metrics`; files from
:mod:`geoseg.compare.files`.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import time
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.accuracy.evaluate import block_tasks
from geoseg.accuracy.reference import (
    RasterReference,
    open_reference,
    rasterize_index,
    unknown_ids_error,
)
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.compare.files import disagreement_legend, write_compare
from geoseg.compare.summary import outcome_counts, pair_code, summarize
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.classmap import NO_VALUE, ClassMap
from geoseg.io.cog import check_output
from geoseg.io.files import clean
from geoseg.io.grid import MapOnGrid
from geoseg.io.staged import save_npz, staging, write_class_cog


def compare(
    maps,
    reference,
    out_dir,
    *,
    names=None,
    classes=None,
    field=None,
    layer=None,
    class_map=None,
    block: int = 2048,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Score the class rasters ``maps`` against ``reference`` (a class raster, or polygons or
    points with a class ``field``) on the same units; write compare.json, CSV tables, a PNG
    chart and one disagreement COG per pair into ``out_dir``. Returns the report (as written,
    with a "files" entry). ``classes``: the class list, for maps without a CLASSES tag;
    ``class_map``: {reference id: map id} (map id 0 leaves a class out)."""
    t0 = time.perf_counter()
    paths = [str(m) for m in maps]
    if len(paths) < 2:
        raise GeoSegError("compare needs two maps or more (for one, use geoseg evaluate)")
    names = map_names(paths, names)
    cmaps = open_maps(paths, names, classes)
    out = Path(out_dir).resolve()  # absolute: workers of another scheduler run elsewhere
    if out.exists() and not out.is_dir():
        raise GeoSegError(f"{out} is a file: pass a folder for the comparison outputs")
    check_output(out / "compare.json", overwrite)
    ref = open_reference(str(reference), cmaps[0], class_map=class_map, field=field, layer=layer)
    pairs = list(itertools.combinations(range(len(paths)), 2))
    rasters = None
    if ref.kind != "points":
        rasters = [
            check_output(out / f"disagreement_{names[a]}_vs_{names[b]}.tif", overwrite)
            for a, b in pairs
        ]
    windows = cmaps[0].windows(block)
    tasks, points = block_tasks(cmaps[0], ref, windows)
    with (
        staging(out, "compare") as stage,
        connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c,
    ):
        tot = _totals(cmaps, pairs, points)
        run_tasks(
            c,
            compare_block,
            [
                (spec, w, payload, pairs, None if rasters is None else str(stage / f"w{k:05d}.npz"))
                for k, (w, spec, payload, _) in enumerate(tasks)
            ],
            args=(cmaps,),
            on_result=lambda i, res: _add(tot, res, tasks[i][3]),
            describe=name_windows(windows),
        )
        if points is not None:
            tot["points_inside"] = points[1]
        _check(tot, cmaps, names, str(reference))
        if rasters is not None:
            grid = (cmaps[0].height, cmaps[0].width, cmaps[0].crs, cmaps[0].transform)
            items = [(w, str(stage / f"w{k:05d}.npz"), None) for k, (w, *_) in enumerate(tasks)]
            run_tasks(
                c,
                write_class_cog,
                [
                    (
                        str(path),
                        [(w, p, i) for w, p, _ in items],
                        disagreement_legend(names[a], names[b]),
                        grid,
                        {"GEOSEG_METHOD": "compare", "GEOSEG_A": paths[a], "GEOSEG_B": paths[b]},
                        str(stage),
                        pair_codes,
                    )
                    for i, ((a, b), path) in enumerate(zip(pairs, rasters, strict=True))
                ],
                describe=lambda i: f"the disagreement map {rasters[i].name}",
                doing="writing it",
            )
    seconds = time.perf_counter() - t0
    report = summarize(cmaps, names, ref, str(reference), class_map, tot, pairs, rasters)
    report["notes"] = grid_notes(cmaps, names) + report["notes"]
    report["run"] = {
        "blocks": len(windows),
        "block_pixels": windows[0].height,
        "megapixels": cmaps[0].pixels / 1e6,
        "seconds": round(seconds, 3),
    }
    report["files"] = write_compare(out, report)
    return clean(report)


def map_names(paths: list[str], names) -> list[str]:
    """Short names of the maps (file stems by default), unique and safe in file names."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if names:
        if len(names) != len(paths):
            raise GeoSegError(
                f"{len(names)} names for {len(paths)} maps: give one name per map (--names A,B,...)"
            )
        given = [re.sub(r"[^A-Za-z0-9_.+-]+", "_", n.strip()) for n in names]
        if len(set(given)) != len(given) or not all(given):
            raise GeoSegError(f"map names must be distinct and not empty: {names}")
        return given
    out: list[str] = []
    for p in paths:
        stem = re.sub(r"[^A-Za-z0-9_.+-]+", "_", Path(p).stem) or "map"
        out.append(stem if stem not in out else f"{stem}_{len(out) + 1}")
    return out


def open_maps(paths: list[str], names: list[str], classes) -> list[ClassMap]:
    """The maps, on one grid and read through one class list (the first map's, or
    ``classes``), so that class indices agree between them."""
    first = ClassMap.open(paths[0], classes)
    out = [first]
    for path, name in zip(paths[1:], names[1:], strict=True):
        try:
            own = ClassMap.open(path, classes)
        except GeoSegError:  # no CLASSES tag: read with the first map's classes
            own = ClassMap.open(path, first.classes)
        if set(own.ids) != set(first.ids):
            raise GeoSegError(
                f"map {name} has classes {own.ids} but {names[0]} has {first.ids}: compare "
                "maps of one class list (or pass --classes to read every map with it)"
            )
        own = dataclasses.replace(own, classes=first.classes)
        same = (
            (own.height, own.width) == (first.height, first.width)
            and own.crs == first.crs
            and own.transform.almost_equals(first.transform)
        )
        if not same:  # read on the first map's grid, block by block, as evaluate and change
            if own.crs is None or first.crs is None:
                raise GeoSegError(
                    f"map {name} ({own.width}x{own.height} px) is not on the grid of "
                    f"{names[0]} ({first.width}x{first.height} px) and one of them has no CRS "
                    "to warp by: give maps on one grid"
                )
            own = MapOnGrid.onto(own, first)
        out.append(own)
    return out


def grid_notes(cmaps: list[ClassMap], names: list[str]) -> list[str]:
    """What was read on the first map's grid rather than as it is."""
    return [
        cm.layer.note(f"map {n}", cm.grid)
        for cm, n in zip(cmaps, names, strict=True)
        if isinstance(cm, MapOnGrid)
    ]


def compare_block(
    cmaps: list[ClassMap],
    ref,
    w: Window,
    payload,
    pairs,
    stage: str | None,
) -> dict:
    """One Dask task: per-map confusion matrices and per-pair outcome counts over ``w`` (for
    points: each map's class index at them), and the staged pair codes."""
    read = [cm.read_index(w) for cm in cmaps]
    res = {"unknown_map": [u for _, u in read], "unknown_ref": {}}
    m = np.stack([idx for idx, _ in read])  # maps x h x w
    if ref == "points":
        rows, cols = payload
        res["points"] = m[:, rows - w.row, cols - w.col]
        return res
    if isinstance(ref, RasterReference):
        r, res["unknown_ref"] = ref.read_index(cmaps[0], w)
    else:
        r = rasterize_index(payload, cmaps[0], w)
    has_ref, valid = r >= 0, (m >= 0).all(axis=0)
    used = has_ref & valid
    res.update(outcome_counts(m[:, used], r[used], cmaps[0].n, pairs))
    res["left_out"] = int((has_ref & ~valid).sum())
    if stage is not None:
        correct = m == r
        codes = np.zeros((len(pairs), *r.shape), dtype=np.uint8)
        for i, (a, b) in enumerate(pairs):
            codes[i][used] = pair_code(correct[a][used], correct[b][used])
        save_npz(stage, codes=codes)
    return res


def pair_codes(arrays: dict, i: int) -> np.ndarray:
    """The disagreement codes of pair ``i`` in a staged block (for the COG writer)."""
    return arrays["codes"][i]


def _totals(cmaps: list[ClassMap], pairs, points) -> dict:
    """Zero totals of the block tasks' counts."""
    k, n = len(cmaps), cmaps[0].n
    tot = {
        "matrices": np.zeros((k, n, n), dtype=np.int64),
        "left_out": 0,
        "pairs": np.zeros((len(pairs), 4), dtype=np.int64),
        "unknown_map": [{} for _ in cmaps],
        "unknown_ref": {},
    }
    if points is not None:
        tot["point_maps"] = np.full((k, len(points[0])), NO_VALUE, dtype=np.int16)
    return tot


def _add(tot: dict, res: dict, sel) -> None:
    """One block task's counts (``sel``: its points, for a point reference) into ``tot``."""
    for i, u in enumerate(res["unknown_map"]):
        for v, c in u.items():
            tot["unknown_map"][i][v] = tot["unknown_map"][i].get(v, 0) + c
    for v, c in res["unknown_ref"].items():
        tot["unknown_ref"][v] = tot["unknown_ref"].get(v, 0) + c
    if "points" in res:
        tot["point_maps"][:, sel] = res["points"]
    else:
        for key in ("matrices", "pairs", "left_out"):
            tot[key] += res[key]


def _check(tot: dict, cmaps: list[ClassMap], names: list[str], source: str) -> None:
    for name, unknown in zip(names, tot["unknown_map"], strict=True):
        if unknown:
            raise GeoSegError(
                f"map {name} has values {sorted(unknown)[:10]} that are not class ids "
                f"{cmaps[0].ids}: compare maps of one class list (or pass --classes)"
            )
    if tot["unknown_ref"]:
        raise unknown_ids_error(tot["unknown_ref"], cmaps[0], source)

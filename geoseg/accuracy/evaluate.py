"""``geoseg evaluate``: accuracy of a class map against reference data, block by block on Dask.

The client reads metadata (and a vector reference, which is small); one task per block window
reads the map and the reference there itself and returns counts: a confusion matrix (rows =
map, columns = reference), the map's pixels per class and what was left out. The counts are
merged, so the result does not depend on the block size or the number of workers, and the
client never holds the map. Metrics come from :mod:`geoseg.core.metrics`; files from
:mod:`geoseg.io.files`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.accuracy.files import write_assessment
from geoseg.accuracy.options import EvaluateOptions
from geoseg.accuracy.reference import (
    RasterReference,
    VectorReference,
    open_reference,
    rasterize_index,
    unknown_ids_error,
)
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core import metrics as mx
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.classmap import NO_VALUE, ClassMap
from geoseg.io.cog import check_output
from geoseg.io.files import clean
from geoseg.version import __version__


def evaluate(
    map_path: str | Path,
    reference: str | Path,
    out_dir: str | Path,
    options: EvaluateOptions | None = None,
    *,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    class_map: dict[int, int] | None = None,
    overwrite: bool = False,
    classes: str | Path | list | None = None,
    field: str | None = None,
    layer: str | None = None,
    **changes,
) -> dict:
    """Assess ``map_path`` (a class raster) against ``reference`` (a class raster, or polygons
    or points with a class ``field``) and write report.json, CSV tables and PNG plots to
    ``out_dir``. Returns the report (every number, as written to report.json).

    ``classes``: the map's class list when it has no CLASSES tag. ``class_map``: {reference id:
    map id} for reference ids that differ from the map's (map id 0 leaves a class out).
    ``options`` and ``changes``: :class:`~geoseg.accuracy.options.EvaluateOptions`
    (``design``, point references: "auto" applies the stratified estimators of Olofsson et
    al. (2014) to a `geoseg sample` point set; "stratified" also to other points, taken as a
    stratified (by map class) or simple random sample (post-stratified); "none" never.
    ``block``: pixels per side of a task's window, at least 64, rounded to a multiple of 32).
    """
    o = EvaluateOptions.of(options, **changes)
    design, block = o.design, o.block
    cmap = ClassMap.open(map_path, classes)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GeoSegError(f"{out} is a file: pass a folder for the assessment outputs")
    check_output(out / "report.json", overwrite)
    ref = open_reference(str(reference), cmap, class_map=class_map, field=field, layer=layer)
    windows = cmap.windows(block)
    t0 = time.perf_counter()
    counts = _run(cmap, ref, windows, ClusterOptions(workers=workers, scheduler=scheduler), client)
    seconds = time.perf_counter() - t0
    if counts["unknown_ref"]:
        raise unknown_ids_error(counts["unknown_ref"], cmap, str(reference))
    report = _report(cmap, ref, counts, design, str(reference), class_map)
    report["run"] = {
        "blocks": len(windows),
        "block_pixels": windows[0].height,
        "megapixels": cmap.pixels / 1e6,
        "seconds": round(seconds, 3),
        "mpx_per_s": round(cmap.pixels / 1e6 / seconds, 2) if seconds else None,
    }
    report["files"] = write_assessment(out, report)
    return clean(report)


def parse_class_map(items: list[str] | None) -> dict[int, int] | None:
    """``["3=1", "4=0"]`` -> {3: 1, 4: 0} (the CLI's --class-map REF=MAP)."""
    if not items:
        return None
    out = {}
    for item in items:
        ref, sep, dst = item.partition("=")
        try:
            out[int(ref)] = int(dst)
        except ValueError:
            raise GeoSegError(
                f"--class-map {item!r} is not REF=MAP with integer ids (e.g. --class-map 11=1)"
            ) from None
        if not sep:
            raise GeoSegError(f"--class-map {item!r} is not REF=MAP (e.g. --class-map 11=1)")
    return out


def evaluate_block(cmap: ClassMap, ref, window: Window, payload) -> dict:
    """One Dask task: counts for ``window``. ``ref`` is the RasterReference, or the kind of a
    vector reference with ``payload`` its shapes (polygons) or pixel rows/cols (points)."""
    m, unknown_map = cmap.read_index(window)
    res = {"unknown_map": unknown_map, "unknown_ref": {}}
    if ref == "points":
        rows, cols = payload
        res["map_counts"] = np.bincount(m[m >= 0].ravel(), minlength=cmap.n)
        res["point_map"] = m[rows - window.row, cols - window.col]
        return res
    if isinstance(ref, RasterReference):
        r, res["unknown_ref"] = ref.read_index(cmap, window)
    else:
        r = rasterize_index(payload, cmap, window)
    n = cmap.n
    pairs = mx.pair_counts(m, r, n)  # row / column n: no map / no reference value
    res["matrix"] = pairs[:n, :n]
    res["map_counts"] = pairs[:n].sum(axis=1)
    res["map_missing"] = int(pairs[n, :n].sum())
    res["ref_missing"] = int(pairs[:n, n].sum())
    return res


def _run(
    cmap: ClassMap, ref, windows: list[Window], opts: ClusterOptions, client: Client | None
) -> dict:
    tasks, points = block_tasks(cmap, ref, windows)
    total = {
        "map_counts": np.zeros(cmap.n, dtype=np.int64),
        "unknown_map": {},
        "unknown_ref": {},
        "matrix": mx.ConfusionAccumulator(cmap.n),
        "map_missing": 0,
        "ref_missing": 0,
    }
    if points is not None:
        total["point_map"] = np.full(len(points[0]), NO_VALUE, dtype=np.int16)

    def add(i: int, res: dict) -> None:
        total["map_counts"] += res["map_counts"]
        for key in ("unknown_map", "unknown_ref"):
            for v, k in res[key].items():
                total[key][v] = total[key].get(v, 0) + k
        if "point_map" in res:
            total["point_map"][tasks[i][3]] = res["point_map"]
        else:
            total["matrix"].add_matrix(res["matrix"])
            total["map_missing"] += res["map_missing"]
            total["ref_missing"] += res["ref_missing"]

    with connect(opts, client) as c:
        items = [(spec, w, payload) for w, spec, payload, _ in tasks]
        run_tasks(
            c, evaluate_block, items, args=(cmap,), on_result=add, describe=name_windows(windows)
        )
    if points is not None:
        total["points_inside"] = points[1]
    return total


def block_tasks(cmap: ClassMap, ref, windows: list[Window]):
    """(window, reference spec, payload, point selection) per task, and for points the pixel
    rows/cols of all points with the mask of those inside the map."""
    if isinstance(ref, RasterReference):
        return [(w, ref, None, None) for w in windows], None
    if ref.kind == "polygons":
        return [(w, "polygons", ref.shapes_in(cmap, w), None) for w in windows], None
    rows, cols = ref.pixels(cmap)
    inside = (rows >= 0) & (rows < cmap.height) & (cols >= 0) & (cols < cmap.width)
    row_starts = np.array(sorted({w.row for w in windows}))
    col_starts = np.array(sorted({w.col for w in windows}))
    bi = np.searchsorted(row_starts, rows, side="right") - 1
    bj = np.searchsorted(col_starts, cols, side="right") - 1
    tasks = []
    for w in windows:
        i, j = np.searchsorted(row_starts, w.row), np.searchsorted(col_starts, w.col)
        sel = np.flatnonzero(inside & (bi == i) & (bj == j))
        tasks.append((w, "points", (rows[sel], cols[sel]), sel))
    return tasks, (rows, inside)


def _report(
    cmap: ClassMap, ref, counts: dict, design: str, source: str, class_map: dict | None
) -> dict:
    notes = [ref.note] if isinstance(ref, RasterReference) else list(ref.notes)
    area_ha = cmap.pixel_area_ha()
    if area_ha is None:
        notes.append("the map has no projected CRS in linear units: areas are not given")
    if counts["unknown_map"]:
        notes.append(f"map values not in the class list were left out: {counts['unknown_map']}")
    stratified = None
    if isinstance(ref, VectorReference) and ref.kind == "points":
        cm, excluded, strata, unit = _point_matrix(ref, counts)
        stratified = _stratified(cmap, ref, counts, cm, strata, design, area_ha, notes)
    else:
        cm, unit = counts["matrix"].matrix, "pixels"
        excluded = {"map_nodata": counts["map_missing"], "reference_missing": counts["ref_missing"]}
    if cm.sum() == 0:
        raise GeoSegError(
            f"no {unit} to compare: map and reference {source} do not overlap "
            "(or all of the overlap is nodata / unlabelled)"
        )
    acc = mx.accuracy(cm)
    mapped = counts["map_counts"]
    mapped_ha = mx.mapped_area_ha(mapped, area_ha)
    per_class = []
    for i, c in enumerate(cmap.classes.classes):
        per_class.append(
            {
                "id": c.id,
                "name": c.name,
                "map_total": int(cm[i].sum()),
                "reference_total": int(cm[:, i].sum()),
                "users_accuracy": acc.ua[i],
                "producers_accuracy": acc.pa[i],
                "f1": acc.f1[i],
                "iou": acc.iou[i],
                "quantity_disagreement": acc.disagreement.per_class_quantity[i],
                "allocation_disagreement": acc.disagreement.per_class_allocation[i],
                "mapped_pixels": int(mapped[i]),
                "mapped_area_ha": None if mapped_ha is None else mapped_ha[i],
            }
        )
    if stratified is None and unit == "pixels":
        notes.append(
            "figures are counts of reference pixels (a census of the reference, not a "
            "probability sample): no confidence intervals are given"
        )
    return {
        "geoseg": {"version": __version__, "created": datetime.now(UTC).isoformat()},
        "map": {
            "path": str(Path(cmap.path).resolve()),
            "height": cmap.height,
            "width": cmap.width,
            "crs": cmap.crs.to_string() if cmap.crs else None,
            "pixel_area_ha": area_ha,
            "mapped_area_ha": None if mapped_ha is None else float(mapped_ha.sum()),
        },
        "reference": {
            "path": source,
            "kind": ref.kind,
            "field": getattr(ref, "field", None),
            "layer": getattr(ref, "layer", None),
            "class_map": {str(k): v for k, v in (class_map or {}).items()},
        },
        "matrix_orientation": mx.ORIENTATION,
        "unit": unit,
        "classes": [{"id": c.id, "name": c.name, "color": c.color} for c in cmap.classes.classes],
        "compared": int(cm.sum()),
        "excluded": excluded,
        "confusion_matrix": {
            "orientation": mx.ORIENTATION,
            "rows": cmap.ids,
            "columns": cmap.ids,
            "counts": cm.tolist(),
        },
        "overall": {
            "overall_accuracy": acc.oa,
            "mean_iou": acc.miou,
            "quantity_disagreement": acc.disagreement.quantity,
            "allocation_disagreement": acc.disagreement.allocation,
            "total_disagreement": 1 - acc.oa,
            "kappa": {"value": acc.kappa, "note": mx.KAPPA_NOTE},
        },
        "per_class": per_class,
        "stratified": stratified,
        "notes": notes,
    }


def _point_matrix(ref: VectorReference, counts: dict):
    """Counts matrix of the points, what was left out, and the stratum of each used point."""
    pm, inside = counts["point_map"], counts["points_inside"]
    labelled = ref.values >= 0
    used = inside & labelled & (pm >= 0)
    cm = mx.confusion_matrix(pm[used], ref.values[used], len(counts["map_counts"]))
    excluded = {
        "unlabelled": int((~labelled).sum()),
        "outside_map": int((labelled & ~inside).sum()),
        "map_nodata": int((labelled & inside & (pm < 0)).sum()),
    }
    strata = None
    if ref.strata is not None:
        strata = (ref.strata[used], pm[used], ref.values[used])
    return cm, excluded, strata, "points"


def _stratified(cmap, ref, counts, cm, strata, design, area_ha, notes) -> dict | None:
    if design == "none" or (design == "auto" and strata is None):
        if design == "auto":
            notes.append(
                "points are not a `geoseg sample` stratified sample: figures are sample "
                "counts without area weighting (pass design='stratified' if they are "
                "a stratified-by-map-class or simple random sample)"
            )
        return None
    if strata is not None:
        rec, now, refv = strata
        moved = int((rec != now).sum())
        if moved:
            notes.append(
                f"{moved} sample points lie on a different class in this map than in "
                "the map they were drawn from: stratified estimators not applied"
            )
            return None
        cm = mx.confusion_matrix(rec, refv, cmap.n)
        how = "stratified random sample by map class (geoseg sample)"
        pixels = np.array(
            [ref.stratum_pixels.get(i, counts["map_counts"][i]) for i in range(cmap.n)],
            dtype=np.int64,
        )
        if (pixels != counts["map_counts"]).any():
            notes.append(
                "the stratum sizes recorded with the sample differ from this map's "
                "pixel counts: the recorded ones are used"
            )
    else:
        how = "post-stratified by map class (points taken as a probability sample)"
        pixels = counts["map_counts"].astype(np.int64)
    try:
        est = mx.stratified_estimates(cm, pixels)
    except ValueError as e:
        notes.append(f"stratified estimators not applied: {e}")
        return None
    if (est.sample_sizes[pixels > 0] < 2).any():
        notes.append("strata with fewer than 2 labelled points have no standard errors")
    z = mx.Z95
    area = est.area(area_ha) if area_ha is not None else None
    dis = mx.disagreement(est.p)
    f1 = mx.f1_scores(est.p)

    def ci(v, se):
        return {"estimate": v, "se": se, "ci95": z * se}

    per_class = []
    for i, c in enumerate(cmap.classes.classes):
        per_class.append(
            {
                "id": c.id,
                "name": c.name,
                "stratum_pixels": int(pixels[i]),
                "weight": est.weights[i],
                "sample_size": int(est.sample_sizes[i]),
                "users_accuracy": ci(est.ua[i], est.ua_se[i]),
                "producers_accuracy": ci(est.pa[i], est.pa_se[i]),
                "f1": f1[i],
                "area_proportion": ci(est.area_proportion[i], est.area_proportion_se[i]),
                "area_ha": None if area is None else ci(area[0][i], area[1][i]),
                "mapped_area_ha": None if area_ha is None else float(pixels[i] * area_ha),
            }
        )
    return {
        "estimator": "Olofsson et al. (2014), Remote Sensing of Environment 148:42-57, "
        "eq. 1-7 and 9-11",
        "design": how,
        "confidence_level": 0.95,
        "z": z,
        "area_proportions": {"orientation": mx.ORIENTATION, "values": est.p.tolist()},
        "overall_accuracy": ci(est.oa, est.oa_se),
        "quantity_disagreement": dis.quantity,
        "allocation_disagreement": dis.allocation,
        "per_class": per_class,
    }

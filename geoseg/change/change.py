"""``geoseg change``: land-cover change between two dates, block by block on Dask.

Post-classification comparison (from what to what), with the models' own confidence limiting
false change. Inputs are two class rasters (with their ``_probabilities.tif`` siblings when
present, or explicit probability rasters), or two scenes and a model bundle, which are first
predicted with the engine (class + probability COGs). Both dates go onto one grid, the first
date's (or one the user names), cropped to the common footprint; a date on another grid is
warped window by window inside the tasks (:mod:`geoseg.io.grid`). Block tasks
(:mod:`geoseg.change.blocks`) stage codes and statuses and return counts; one task assembles
the COGs; change pixels are polygonized (:mod:`geoseg.change.polygons`); tables, plots and
report.json follow (:mod:`geoseg.change.summary`, :mod:`geoseg.change.files`).

Outputs in ``out_dir``: ``change_fromto.tif`` (UInt16 ``from_id * 100 + to_id``, nodata
65535, ``.aux.xml`` category names and ``.qml``), ``change_mask.tif`` (1 unchanged, 2 changed,
3 uncertain, 0 nodata; palette), ``change_polygons.gpkg``, ``transitions.csv``,
``class_changes.csv``, ``transitions.png`` and ``report.json`` (last: its presence means the
set is complete).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from distributed import Client

from geoseg.change.accuracy import PointRef, assess, open_change_reference, points_by_window
from geoseg.change.blocks import ChangeJob, DateInput, assemble_change, change_block
from geoseg.change.files import write_change_report
from geoseg.change.options import ChangeOptions
from geoseg.change.polygons import change_polygons
from geoseg.change.style import CODE_NODATA, MAX_CLASS_ID, transition_legend
from geoseg.change.summary import status_pixels, summarize
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core.classes import ClassList
from geoseg.engine.radiometry import check_normalize
from geoseg.errors import GeoSegError
from geoseg.io.classmap import ClassMap
from geoseg.io.cog import check_output
from geoseg.io.dates import acquisition_date
from geoseg.io.files import clean
from geoseg.io.grid import Layer, RasterGrid, common_grid
from geoseg.io.scene import open_raster
from geoseg.io.stac import item_path
from geoseg.io.style import check_style_free
from geoseg.model.bundle import read_meta
from geoseg.version import __version__

NAMES = {
    "fromto": "change_fromto.tif",
    "mask": "change_mask.tif",
    "polygons": "change_polygons.gpkg",
    "transitions_csv": "transitions.csv",
    "class_changes_csv": "class_changes.csv",
    "transitions_png": "transitions.png",
    "report_json": "report.json",
}


@dataclass
class ChangeResult:
    outputs: dict[str, str]
    report: dict
    seconds: float

    @property
    def changed_ha(self) -> float:
        return self.report["area_ha"]["changed"]

    @property
    def uncertain_ha(self) -> float:
        return self.report["area_ha"]["uncertain"]

    @property
    def matrix_ha(self) -> np.ndarray:
        return np.asarray(self.report["transitions"]["matrix_ha"])


def change(
    before: str | Path,
    after: str | Path,
    out_dir: str | Path,
    options: ChangeOptions | None = None,
    *,
    model: str | Path | None = None,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    reference: str | Path | None = None,
    reference_field: str | None = None,
    before_probabilities: str | Path | None = None,
    after_probabilities: str | Path | None = None,
    classes: str | Path | list | None = None,
    dates: tuple[str | None, str | None] | None = None,
    overwrite: bool = False,
    mmu_ha: float | None = None,
    **changes,
) -> ChangeResult:
    """Change from ``before`` to ``after`` (class rasters, or scenes with ``model``) into
    ``out_dir``. ``options`` and ``changes``: :class:`~geoseg.change.options.ChangeOptions`:
    ``threshold``: the confidence gate (largest class probability on both dates). ``mmu``
    (``mmu_ha`` its former name): minimum mapping unit of the change polygons, hectares.
    ``grid``: "before" (default), "after" or a raster whose grid (CRS, pixel lattice, extent)
    to map on. ``design``: auto / stratified / none, for reference points (see
    :mod:`geoseg.change.accuracy`). ``block``: pixels per side of a task's window.
    ``reference``: reference change (raster or points; 0/1 or from-to codes) to assess the map
    against. ``classes``: class list for class rasters without a CLASSES tag. ``dates``: ISO
    dates overriding those read from the file names. ``normalize``: with ``model``, how each
    date's bands are put onto the training radiometry (``geoseg predict --normalize``), or ``pif``:
    the later scene fitted onto the earlier from pseudo-invariant pixels
    (:mod:`geoseg.harmonize.pif`). ``adapt``: with ``model``, the later date is predicted by
    the bundle fitted to it first (``geoseg adapt``; kept in ``OUT/adapted-model``)."""
    t0 = time.perf_counter()
    if mmu_ha is not None:
        changes["mmu"] = mmu_ha
    if isinstance(changes.get("grid"), os.PathLike):  # a raster given as a Path
        changes["grid"] = os.fspath(changes["grid"])
    o = ChangeOptions.of(options, **changes)
    threshold, mmu_ha, grid, block = o.threshold, o.mmu, o.grid, o.block
    design, normalize, adapt = o.design, o.normalize, o.adapt
    if adapt and model is None:
        raise GeoSegError("--adapt fits the --model bundle to the later date: pass a bundle")
    if model is not None:
        if normalize != "pif":  # pif needs both scenes, and is fitted once the cluster runs
            check_normalize(normalize, read_meta(model), str(model))
    elif normalize != "bundle":
        raise GeoSegError("--normalize applies to scenes predicted with --model: pass a bundle")
    before, after = str(before), str(after)
    if model is None:
        for p in (before, after):
            _not_a_scene(p)
    g_before, g_after = RasterGrid.of(before), RasterGrid.of(after)
    base, grid_name = _base_grid(grid, g_before, g_after)
    out_grid = common_grid(base, [(f"before {before}", g_before), (f"after {after}", g_after)])
    dates = dates or (None, None)  # else in the file name (S2_20200831), else in its tags
    date_b = acquisition_date(before, dates[0], name_first=True)
    date_a = acquisition_date(after, dates[1], name_first=True)
    probs = (before_probabilities, after_probabilities)
    maps, prepared, pif = (before, after), None, None
    if model is None:  # everything checked before any output or cluster
        prepared = _prepare(maps, out_grid, classes, probs, reference, reference_field)
    # absolute: the workers of another scheduler run in another folder
    out = _check_outputs(Path(out_dir), overwrite, model, before, after).resolve()
    staging = out / f".geoseg-change-{uuid.uuid4().hex[:12]}"
    outputs, writing = _all_outputs(out, model, before, after), False
    try:
        with connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c:
            if model is not None:
                writing = _start_writing(out)
                maps, pif = _predict(
                    c, model, before, after, out, block, normalize, overwrite, adapt
                )
                prepared = _prepare(maps, out_grid, classes, probs, reference, reference_field)
            union, dated, notes, gate, ref = prepared
            staging.mkdir(parents=True)
            job = ChangeJob(
                out_grid,
                dated[0],
                dated[1],
                tuple(union.ids),
                threshold if gate else None,
                str(staging),
                block,
                None if ref is None or isinstance(ref, PointRef) else ref,
            )
            t_blocks = time.perf_counter()
            totals = _run_blocks(c, job, ref)
            _check_counts(totals, maps, reference)
            t_asm = time.perf_counter()
            writing = _start_writing(out)
            tags = _tags(union, maps, (date_b, date_a), job.threshold)
            outs = c.submit(
                assemble_change,
                job,
                str(out / NAMES["fromto"]),
                str(out / NAMES["mask"]),
                transition_legend(union),
                tags,
                pure=False,
            ).result()
            t_poly = time.perf_counter()
            poly = change_polygons(
                outs["changed_codes"],
                out / NAMES["polygons"],
                staging,
                union,
                dates=(date_b, date_a),
                mmu_ha=mmu_ha,
                client=c,
                block=max(block, 64),
            )
        t_report = time.perf_counter()
        report = _report(
            job,
            totals,
            union,
            dated,
            maps,
            (before, after),
            (date_b, date_a),
            grid_name,
            poly,
            ref,
            design,
        )
        report["notes"] = notes
        if model is not None:  # how each date's bands met the training radiometry
            report["normalize"] = {
                w: _radiometry_of(m) for w, m in zip(NORM_KEYS, maps, strict=True)
            }
            if pif is not None:  # the later date fitted onto the earlier: how
                report["normalize"]["pif"] = pif
        seconds = time.perf_counter() - t0
        marks = (t0, t_blocks, t_asm, t_poly, t_report)
        report["run"] = {
            "blocks": len(job.windows()),
            "block_pixels": job.windows()[0].height,
            "megapixels": out_grid.height * out_grid.width / 1e6,
            "seconds": round(seconds, 3),
            "seconds_by_step": {  # the report files follow (well under 1 s)
                k: round(t1 - t, 3)
                for k, t, t1 in zip(
                    ("prepare_and_predict", "blocks", "assembly", "polygons"),
                    marks[:-1],
                    marks[1:],
                    strict=True,
                )
            },
        }
        files = {k: str(out / NAMES[k]) for k in ("fromto", "mask", "polygons")}
        if model is not None:
            files.update(before_classes=maps[0], after_classes=maps[1])
        files = write_change_report(out, report, files)
    except BaseException:
        for p in outputs if writing else []:  # no partial set of outputs
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ChangeResult(files, clean({**report, "files": files}), seconds)


def _report(
    job: ChangeJob,
    totals: dict,
    union: ClassList,
    dated,
    maps,
    inputs,
    dates,
    grid_name: str,
    poly: dict,
    ref,
    design: str,
) -> dict:
    grid = job.grid
    pixel_ha = grid.pixel_area_ha()
    report = {
        "geoseg": {"version": __version__, "created": datetime.now(UTC).isoformat()},
        "code": "from_id * 100 + to_id",
        "code_nodata": CODE_NODATA,
        "classes": [{"id": k.id, "name": k.name, "color": k.color} for k in union.classes],
    }
    for i, what in enumerate(("before", "after")):
        d = dated[i]
        report[what] = {
            "path": inputs[i],
            "map": maps[i],
            "date": dates[i],
            "read": d.classes.note(f"{what} classes", grid),
            "probabilities": d.probs.path if d.probs else None,
            "probabilities_read": d.probs.note(f"{what} probabilities", grid) if d.probs else None,
        }
    report["grid"] = {
        **grid.describe(),
        "from": grid_name,
        "pixel_area_ha": pixel_ha,
        "note": "only pixels inside both dates' footprints are mapped",
    }
    report.update(summarize(totals, union, pixel_ha, job.threshold))
    report["polygons"] = {
        **poly,
        "changed_ha_below_mmu": round(max(0.0, report["area_ha"]["changed"] - poly["area_ha"]), 6),
    }
    if ref is not None:
        report["accuracy"] = assess(
            ref,
            totals,
            job.ids,
            design,
            pixel_ha,
            status_pixels(totals["pairs"], totals["uncertain"]),
        )
    return report


NORM_KEYS = ("before", "after")


def _radiometry_of(path: str) -> dict:
    """The radiometric mapping a predicted date was made with (its COG tags)."""
    with rasterio.open(path) as src:
        tags = src.tags()
    used = tags.get("GEOSEG_RADIOMETRY")
    return json.loads(used) if used else {"mode": tags.get("GEOSEG_NORMALIZE", "bundle")}


def _base_grid(grid, g_before: RasterGrid, g_after: RasterGrid) -> tuple[RasterGrid, str]:
    if grid is None or str(grid) == "before":
        return g_before, "before"
    if str(grid) == "after":
        return g_after, "after"
    return RasterGrid.of(grid), str(grid)


def _check_outputs(out: Path, overwrite: bool, model, before: str, after: str) -> Path:
    if out.exists() and not out.is_dir():
        raise GeoSegError(f"{out} is a file: pass a folder for the change outputs")
    for name in NAMES.values():
        check_output(out / name, overwrite)
        if name.endswith(".tif"):
            check_style_free(out / name, "raster")
    if model is not None:
        for p in _predicted_paths(out, before, after):
            check_output(p, overwrite)
    return out


def _predicted_paths(out: Path, before: str, after: str) -> tuple[Path, Path]:
    return (out / f"before_{Path(before).stem}.tif", out / f"after_{Path(after).stem}.tif")


def _all_outputs(out: Path, model, before: str, after: str) -> list[Path]:
    """Every file a run writes, sidecars included."""
    files = [out / n for n in NAMES.values()]
    files += [Path(f"{out / n}.aux.xml") for n in (NAMES["fromto"], NAMES["mask"])]
    files += [(out / NAMES[k]).with_suffix(".qml") for k in ("fromto", "mask")]
    files += [item_path(out / NAMES[k]) for k in ("fromto", "mask")]
    if model is not None:
        for p in _predicted_paths(out, before, after):
            files += [
                p,
                p.with_name(f"{p.stem}_probabilities.tif"),
                p.with_name(f"{p.stem}_confidence.tif"),
                Path(f"{p}.aux.xml"),
                p.with_suffix(".qml"),
            ]
    return files


def _start_writing(out: Path) -> bool:
    """Outputs are about to change: an earlier report.json (the mark of a complete set) goes
    first."""
    with contextlib.suppress(FileNotFoundError):
        (out / NAMES["report_json"]).unlink()
    return True


ADAPTED = "adapted-model"  # the bundle --adapt fitted to the later date


def _predict(
    c: Client, model, before: str, after: str, out: Path, block: int, normalize, overwrite, adapt
) -> tuple[str, str]:
    """Both dates predicted; with ``pif`` the later one's bands are first fitted onto the
    earlier one's (the earlier is taken as it is); with ``adapt`` the later one by the bundle
    fitted to it (self-training, :mod:`geoseg.train.adapt`)."""
    from geoseg.engine.predict import predict

    models = [str(model), str(model)]
    if adapt:
        from geoseg.train.adapt import adapt as fit

        mode = normalize if normalize in ("auto", "bundle", "scene") else "auto"
        models[1] = str(out / ADAPTED)
        fit(model, after, models[1], normalize=mode, client=c, overwrite=True)

    radiometry, pif = [None, None], None
    if normalize == "pif":
        from geoseg.harmonize.pif import pif_mapping

        radiometry[1], pif = pif_mapping(c, after, before, read_meta(model).bands)
        normalize = "bundle"
    paths = []
    dsts = _predicted_paths(out, before, after)
    for scene, dst, rad, bundle in zip((before, after), dsts, radiometry, models, strict=True):
        res = predict(
            scene,
            bundle,
            dst,
            probabilities=True,
            client=c,
            block=block,
            normalize=normalize,
            radiometry=rad,
            overwrite=overwrite,
        )
        paths.append(res.path)
    return (paths[0], paths[1]), pif


def _union(maps: tuple[str, str], lists: list[ClassList]) -> ClassList:
    """One class list for both dates (ids with the same meaning on both)."""
    by_id: dict[int, object] = {}
    for path, cl in zip(maps, lists, strict=True):
        for k in cl.classes:
            other = by_id.setdefault(k.id, k)
            if other.name.strip().lower() != k.name.strip().lower():
                raise GeoSegError(
                    f"the dates' class lists disagree on id {k.id} ("
                    f"{other.name!r} vs {k.name!r} in {path}): both dates need "
                    "one class list (pass --classes)"
                )
    if max(by_id) > MAX_CLASS_ID:
        raise GeoSegError(
            f"class id {max(by_id)} cannot be coded as from_id * 100 + to_id "
            f"(ids 0..{MAX_CLASS_ID}): renumber the classes"
        )
    return ClassList(classes=[k.model_dump() for k in by_id.values()])


def _probabilities(path: str, explicit, n_classes: int) -> str | None:
    if explicit is not None:
        p = Path(explicit)
        if not p.exists():
            raise GeoSegError(f"probability raster {p} does not exist")
    else:
        stem = Path(path)
        p = next(
            (
                q
                for q in (
                    stem.with_name(f"{stem.stem}_probabilities.tif"),
                    stem.with_name(f"{stem.stem}_confidence.tif"),
                )
                if q.exists()
            ),
            None,
        )
        if p is None:
            return None
    with open_raster(p) as src:
        count = src.count
    if count not in (1, n_classes):
        raise GeoSegError(
            f"{p} has {count} bands: pass one probability band per class "
            f"({n_classes}) or a single confidence band"
        )
    return str(p)


def _not_a_scene(path: str) -> None:
    """Refuse, with the advice that fits, a raster that cannot be a class map (one band of
    integer class ids): a scene (several integer bands: predict it with --model) or class
    probabilities (several float bands: pass the class map they belong to)."""
    with open_raster(path, warn_no_crs=False) as src:
        count, dtype = src.count, src.dtypes[0]
        tagged = "CLASSES" in src.tags(1)
    if count == 1 or tagged:
        return
    if np.issubdtype(np.dtype(dtype), np.floating):
        raise GeoSegError(
            f"{path} has {count} {dtype} bands: it looks like class probabilities, not a class "
            "map: pass the class map (its _probabilities.tif sibling is read with it)"
        )
    raise GeoSegError(
        f"{path} has {count} {dtype} bands: it looks like a scene, not a class map: pass "
        "--model BUNDLE to predict both dates first"
    )


def _prepare(maps, grid: RasterGrid, classes, probs, reference, reference_field):
    """Class lists, each date's layers, notes, whether to gate, and the reference."""
    cmaps = [ClassMap.open(p, classes) for p in maps]
    union = _union(maps, [m.classes for m in cmaps])
    index = {cid: i for i, cid in enumerate(union.ids)}
    found = [_probabilities(p, e, m.n) for p, e, m in zip(maps, probs, cmaps, strict=True)]
    gate = all(found)
    notes = []
    if not gate:
        dates = ("the earlier date", "the later date")
        flags = ("--before-probabilities", "--after-probabilities")
        missing = [i for i, f in enumerate(found) if f is None]
        if len(missing) == 2:  # neither map has any: there is nothing to pass
            todo = (
                "to gate, predict both dates with --probabilities (or give the scenes and --model)"
            )
        else:  # the one that is missing, named by its own option
            todo = f"to gate, pass {flags[missing[0]]} (its probability raster)"
        msg = (
            f"no probabilities for {' and '.join(dates[i] for i in missing)}: the confidence "
            f"gate is not applied (every differing pixel counts as changed); {todo}"
        )
        notes.append(msg)
        warnings.warn(msg, stacklevel=3)
    dated = []
    for m, cm, p in zip(maps, cmaps, found, strict=True):
        table = {cid: index[cid] for cid in cm.ids}
        dated.append(DateInput(Layer.on(m, grid), table, Layer.on(p, grid) if gate else None))
    ref = (
        None
        if reference is None
        else open_change_reference(
            str(reference), tuple(union.ids), grid, field_name=reference_field
        )
    )
    return union, dated, notes, gate, ref


def _run_blocks(c: Client, job: ChangeJob, ref) -> dict:
    windows = job.windows()
    payloads = (
        points_by_window(ref, windows) if isinstance(ref, PointRef) else [None] * len(windows)
    )
    n = job.n
    tot: dict = {
        "pairs": np.zeros((n + 1, n + 1), np.int64),
        "uncertain": np.zeros((n, n), np.int64),
        "hist": 0,
        "unknown_before": {},
        "unknown_after": {},
        "unknown_reference": {},
    }
    if isinstance(ref, PointRef):
        tot["point_status"] = np.zeros(len(ref.rows), np.uint8)
        tot["point_transition"] = np.full(len(ref.rows), -1, np.int64)

    def add(i: int, res: dict) -> None:
        for k, v in res.items():
            if k.startswith("unknown_"):
                for val, cnt in v.items():
                    tot[k][val] = tot[k].get(val, 0) + cnt
            elif k in ("pairs", "uncertain", "hist") or k.startswith("ref_"):
                tot[k] = tot.get(k, 0) + v
            elif k.startswith("point_"):
                tot[k][payloads[i][0]] = v

    items = [(w, p[1] if p else None) for w, p in zip(windows, payloads, strict=True)]
    run_tasks(c, change_block, items, args=(job,), on_result=add, describe=name_windows(windows))
    tot["transition_pixels"] = tot["pairs"][:n, :n].ravel()
    return tot


def _check_counts(tot: dict, maps, reference) -> None:
    for key, src in (
        ("unknown_before", maps[0]),
        ("unknown_after", maps[1]),
        ("unknown_reference", reference),
    ):
        if tot[key]:
            vals = sorted(tot[key])
            raise GeoSegError(
                f"{src} holds values {vals[:10]} that are not in its class list "
                "(or not change labels / from-to codes): fix the raster or "
                "pass --classes"
            )
    n = tot["pairs"].shape[0] - 1
    if tot["pairs"][:n, :n].sum() == 0:
        raise GeoSegError(
            "no pixel has a class on both dates in their common footprint "
            "(all nodata): check the inputs"
        )


def _tags(union: ClassList, maps, dates, threshold) -> dict[str, str]:
    return {
        "GEOSEG_CHANGE_CODE": "from_id * 100 + to_id",
        "GEOSEG_CHANGE_CLASSES": json.dumps(
            [{"id": k.id, "name": k.name, "color": k.color} for k in union.classes]
        ),
        "GEOSEG_SOURCE_FROM": str(maps[0]),
        "GEOSEG_SOURCE_TO": str(maps[1]),
        "GEOSEG_DATE_FROM": dates[0] or "",
        "GEOSEG_DATE_TO": dates[1] or "",
        "GEOSEG_THRESHOLD": "" if threshold is None else str(threshold),
    }

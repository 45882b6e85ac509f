"""``geoseg baseline obia``: object-based image analysis on the training config's labels and split.

1. per-band mean and standard deviation of the training pixels (as ``geoseg train``), which
   z-score the bands for segmentation and texture;
2. one Dask task per block (core + halo) of every training and mapped scene: segmentation
   (:mod:`~geoseg.baseline.segment`), object features (:mod:`~geoseg.baseline.features`),
   training samples (objects wholly in the training part of the split, labelled by their
   majority training label) and edge strips (:mod:`~geoseg.baseline.objects`);
3. a random forest (or SVM) fitted on the client;
4. one task per mapped block: every object predicted; parts of objects cut at block edges
   joined (:mod:`~geoseg.baseline.stitch`) and given one class;
5. one class COG per mapped scene, like the engine's, and a JSON report.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.baseline.classifier import fit
from geoseg.baseline.config import load_baseline
from geoseg.baseline.features import FeatureSpec
from geoseg.baseline.objects import ObiaJob, block_classify, block_objects, paint
from geoseg.baseline.result import (
    BaselineResult,
    base_report,
    finish,
    report_path,
    scene_tags,
    tags,
)
from geoseg.baseline.scenes import band_stats_of, grid_of, outputs, plan
from geoseg.baseline.stitch import components, joined_classes, seam_pairs
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import rows_columns, run_tasks
from geoseg.io.staged import block_windows, class_ids_of, staging, write_class_cog

ObiaResult = BaselineResult


def run_obia(
    config,
    out: str | Path | None = None,
    *,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
) -> BaselineResult:
    """Train the OBIA baseline of ``config`` (a baseline YAML, a dict, or a training config)
    and map its scenes into ``out`` (a .tif for one scene, else a folder; default: the
    config's ``output``). Returns the map path(s), the wall time and the report."""
    t0 = time.perf_counter()
    b = load_baseline(config)
    cfg = b.cfg
    p = plan(b)
    out_path = b.output(out, "obia")
    maps = outputs(out_path, p.mapped, overwrite)
    rpath = report_path(out_path, "obia", overwrite)
    mean, std = band_stats_of(p)
    names = list(p.scenes[0].info.band_names[k - 1] for k in p.bands)
    spec = FeatureSpec.of(cfg, p.bands, names)
    n = len(p.classes.classes)
    marks = {"start": t0, "stats": time.perf_counter()}
    with (
        staging(maps[0].parent, "obia") as stage,
        connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c,
    ):
        job = ObiaJob(
            cfg.segmentation,
            spec,
            tuple(p.bands),
            tuple(mean),
            tuple(std),
            n,
            cfg.min_overlap,
            cfg.halo,
            str(stage),
        )
        blocks = {s.index: block_windows(s.info.height, s.info.width, cfg.block) for s in p.scenes}
        items = [(s, bi, bj, w) for s in p.scenes for bi, bj, w in blocks[s.index]]
        named = {  # (scene, bi, bj) -> the block as a worker's death names it
            (s.index, bi, bj): f"block of scene {s.name} ({rows_columns(w)})"
            for s, bi, bj, w in items
        }
        results = {}

        def keep(i: int, r: dict) -> None:
            results[(r["scene"], r["bi"], r["bj"])] = r

        keys = list(named)
        run_tasks(
            c, block_objects, items, args=(job,), on_result=keep, describe=lambda i: named[keys[i]]
        )
        marks["segment"] = time.perf_counter()
        model, counts = _fit(cfg, p, spec, results)
        marks["fit"] = time.perf_counter()
        j = Joins.of(results, {s.index for s in p.mapped})
        joined, predict_s = _classify(c, job, model, j, results, named)
        marks["predict"] = time.perf_counter()
        t = tags(
            "obia",
            segmentation=json.dumps(cfg.segmentation.model_dump()),
            classifier=cfg.classifier.kind,
        )
        run_tasks(
            c,
            write_class_cog,
            [
                (
                    str(path),
                    _items(job, j, joined, s, blocks, p),
                    p.classes,
                    grid_of(s),
                    {**t, **scene_tags(s.scene.paths)},
                    str(stage),
                    paint,
                )
                for s, path in zip(p.mapped, maps, strict=True)
            ],
            describe=lambda i: f"the class map {maps[i].name}",
            doing="writing it",
        )
        marks["assemble"] = time.perf_counter()
    report = base_report("obia", b, p, maps)
    report.update(_obia_report(b, p, spec, results, j, counts, model, mean, std))
    report["seconds"] = {
        k: round(t1 - t_, 3) for (_, t_), (k, t1) in itertools.pairwise(marks.items())
    }
    report["seconds"]["predict_in_tasks"] = round(predict_s, 3)
    seconds = time.perf_counter() - t0
    report["seconds"]["total"] = round(seconds, 3)
    return finish(report, rpath, maps, seconds)


@dataclass(frozen=True)
class Joins:
    """The blocks of the mapped scenes, their global id offsets, and the object parts joined
    across block edges (global ids, component of each, local ids per block)."""

    keys: list[tuple[int, int, int]]
    offsets: dict[tuple, int]
    nodes: np.ndarray
    comp: np.ndarray
    local: dict[tuple, np.ndarray]

    @classmethod
    def of(cls, results: dict, mapped: set[int]) -> Joins:
        keys = [k for k in sorted(results) if k[0] in mapped]
        starts = np.cumsum([0] + [results[k]["objects"] for k in keys])
        offsets = dict(zip(keys, starts[:-1].tolist(), strict=True))
        nodes, comp = components(seam_pairs({k: results[k] for k in keys}, offsets))
        local = {
            k: nodes[(nodes >= o) & (nodes < o + results[k]["objects"])] - o
            for k, o in offsets.items()
        }
        return cls(keys, offsets, nodes, comp, local)

    def at(self, k: tuple) -> np.ndarray:
        """Positions in ``nodes`` of block ``k``'s joined parts."""
        return np.searchsorted(self.nodes, self.local[k] + self.offsets[k])


def _fit(cfg, p, spec, results: dict):
    """The classifier, fitted on the training objects of all blocks (in block order, not
    completion order: reproducible)."""
    order = [results[k] for k in sorted(results)]
    xs = [r["x"] for r in order if "x" in r]
    ys = [r["y"] for r in order if "y" in r]
    x = np.concatenate(xs) if xs else np.zeros((0, len(spec.names())), np.float32)
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    return fit(cfg.classifier, cfg.seed, x, y, [c.name for c in p.classes.classes])


def _classify(
    c, job: ObiaJob, model, j: Joins, results: dict, named: dict
) -> tuple[np.ndarray, float]:
    """Every mapped block's objects predicted on the workers; the class of each joined part
    (from its component's area-weighted probabilities) and the seconds spent in the tasks."""
    remote = c.scatter(model, broadcast=True)
    probs = np.zeros((len(j.nodes), job.n_classes), dtype=np.float32)
    area = np.zeros(len(j.nodes))
    seconds = 0.0

    def add(i: int, r: dict) -> None:
        nonlocal seconds
        k = j.keys[i]
        probs[j.at(k)], area[j.at(k)] = r["probs"], results[k]["area"][j.local[k]]
        seconds += r["seconds"]

    items = [(remote, job.path(k), j.local[k]) for k in j.keys]
    run_tasks(
        c, block_classify, items, args=(job,), on_result=add, describe=lambda i: named[j.keys[i]]
    )
    return joined_classes(j.comp, probs, area), seconds


def _items(job: ObiaJob, j: Joins, joined: np.ndarray, s, blocks: dict, p) -> list:
    """(window, staged block, paint arguments) of scene ``s``'s blocks for the COG writer."""
    ids, nodata = class_ids_of(p.classes), p.classes.nodata
    return [
        (
            w,
            job.path((s.index, bi, bj)),
            (ids, nodata, j.local[(s.index, bi, bj)], joined[j.at((s.index, bi, bj))]),
        )
        for bi, bj, w in blocks[s.index]
    ]


def _obia_report(b, p, spec, results, j: Joins, counts, model, mean, std) -> dict:
    cfg = b.cfg
    keys, nodes, comp = j.keys, j.nodes, j.comp
    held = np.array([r["heldout"] for r in results.values() if "heldout" in r]).reshape(-1, 2)
    px = sum(results[k]["pixels"] for k in keys)
    n_obj = sum(results[k]["objects"] for k in keys)
    params = model.get_params()
    return {
        "segmentation": cfg.segmentation.model_dump(),
        "block": cfg.block,
        "halo": cfg.halo,
        "blocks": len(results),
        "band_mean": mean,
        "band_std": std,
        "features": spec.names(),
        "band_roles": cfg.band_roles.model_dump(exclude_none=True),
        "classifier": {
            "kind": cfg.classifier.kind,
            "params": {
                k: v
                for k, v in params.items()
                if isinstance(v, int | float | str | bool | type(None))
            },
        },
        "min_overlap": cfg.min_overlap,
        "objects": {
            "mapped": n_obj,
            "mapped_pixels": px,
            "mean_size_px": px / n_obj if n_obj else None,
            "training": int(counts.sum()),
            "training_per_class": {
                c.name: int(v) for c, v in zip(p.classes.classes, counts, strict=True)
            },
            "parts_joined_across_block_edges": len(nodes),
            "objects_from_joined_parts": int(comp.max()) + 1 if len(comp) else 0,
        },
        # OA the map would reach on held-out labels if every object took its majority
        # held-out label: the ceiling that the segmentation sets on any object classifier.
        "segmentation_ceiling": {
            "heldout_pixels": int(held[:, 1].sum()),
            "oa": float(held[:, 0].sum() / held[:, 1].sum()) if held[:, 1].sum() else None,
        },
    }

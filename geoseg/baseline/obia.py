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
from pathlib import Path

import numpy as np
from distributed import Client, as_completed

from geoseg.baseline.classifier import fit
from geoseg.baseline.config import load_baseline
from geoseg.baseline.features import FeatureSpec
from geoseg.baseline.objects import ObiaJob, block_classify, block_objects, paint
from geoseg.baseline.result import (
    BaselineResult,
    base_report,
    finish,
    report_path,
    tags,
)
from geoseg.baseline.scenes import band_stats_of, grid_of, outputs, plan
from geoseg.baseline.stitch import components, joined_classes, seam_pairs
from geoseg.engine.cluster import ClusterOptions, connect
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
        futs = [
            c.submit(block_objects, job, s, bi, bj, w, pure=False)
            for s in p.scenes
            for bi, bj, w in blocks[s.index]
        ]
        results = {}
        for f in as_completed(futs):
            r = f.result()
            results[(r["scene"], r["bi"], r["bj"])] = r
            f.release()
        marks["segment"] = time.perf_counter()
        order = [results[k] for k in sorted(results)]  # not completion order: reproducible
        xs = [r["x"] for r in order if "x" in r]
        ys = [r["y"] for r in order if "y" in r]
        x = np.concatenate(xs) if xs else np.zeros((0, len(spec.names())), np.float32)
        y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
        model, counts = fit(cfg.classifier, cfg.seed, x, y, [c.name for c in p.classes.classes])
        marks["fit"] = time.perf_counter()
        mapped = {s.index for s in p.mapped}
        keys = [k for k in sorted(results) if k[0] in mapped]
        starts = np.cumsum([0] + [results[k]["objects"] for k in keys])
        offsets = dict(zip(keys, starts[:-1].tolist(), strict=True))
        nodes, comp = components(seam_pairs({k: results[k] for k in keys}, offsets))
        local = {
            k: nodes[(nodes >= o) & (nodes < o + results[k]["objects"])] - o
            for k, o in offsets.items()
        }
        remote_model = c.scatter(model, broadcast=True)
        futs = {
            c.submit(block_classify, job, remote_model, job.path(k), local[k], pure=False): k
            for k in keys
        }
        probs = np.zeros((len(nodes), n), dtype=np.float32)
        area = np.zeros(len(nodes))
        predict_s = 0.0
        for f in as_completed(futs):
            k = futs[f]
            r = f.result()
            at = np.searchsorted(nodes, local[k] + offsets[k])
            probs[at], area[at] = r["probs"], results[k]["area"][local[k]]
            predict_s += r["seconds"]
        joined = joined_classes(comp, probs, area)
        marks["predict"] = time.perf_counter()
        ids, nodata = class_ids_of(p.classes), p.classes.nodata
        t = tags(
            "obia",
            segmentation=json.dumps(cfg.segmentation.model_dump()),
            classifier=cfg.classifier.kind,
        )
        asm = []
        for s, path in zip(p.mapped, maps, strict=True):
            items = []
            for bi, bj, w in blocks[s.index]:
                k = (s.index, bi, bj)
                sel = np.searchsorted(nodes, local[k] + offsets[k])
                items.append((w, job.path(k), (ids, nodata, local[k], joined[sel])))
            asm.append(
                c.submit(
                    write_class_cog,
                    str(path),
                    items,
                    p.classes,
                    grid_of(s),
                    {**t, "GEOSEG_SOURCE": ",".join(s.scene.paths)},
                    str(stage),
                    paint,
                    pure=False,
                )
            )
        c.gather(asm)
        marks["assemble"] = time.perf_counter()
    report = base_report("obia", b, p, maps)
    report.update(_obia_report(b, p, spec, results, keys, counts, nodes, comp, model, mean, std))
    report["seconds"] = {
        k: round(t1 - t_, 3) for (_, t_), (k, t1) in itertools.pairwise(marks.items())
    }
    report["seconds"]["predict_in_tasks"] = round(predict_s, 3)
    seconds = time.perf_counter() - t0
    report["seconds"]["total"] = round(seconds, 3)
    return finish(report, rpath, maps, seconds)


def _obia_report(b, p, spec, results, keys, counts, nodes, comp, model, mean, std) -> dict:
    cfg = b.cfg
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

"""``geoseg baseline pixel-rf``: a per-pixel random forest on band values (and NDVI / NDWI).

Training pixels are a random sample, per class, of the labelled pixels ``geoseg train`` trains
on (:func:`geoseg.train.sampling.collect_anchors`: outside the validation part of the split
and its buffer, with valid image data); the forest is fitted on the client and every valid
pixel of the mapped scenes is classified by one Dask task per block.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.baseline.classifier import fit, predict_proba
from geoseg.baseline.config import load_baseline
from geoseg.baseline.features import index_positions, pixel_features
from geoseg.baseline.result import (
    BaselineResult,
    base_report,
    finish,
    report_path,
    scene_tags,
    tags,
)
from geoseg.baseline.scenes import Plan, grid_of, outputs, plan
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import rows_columns, run_tasks
from geoseg.core.grid import Window
from geoseg.io.scene import Scene
from geoseg.io.staged import block_windows, class_ids_of, save_npz, staging, write_class_cog
from geoseg.train.labels import IGNORE
from geoseg.train.sampling import collect_anchors, scan_windows


def run_pixel_rf(
    config,
    out: str | Path | None = None,
    *,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
) -> BaselineResult:
    """Train the pixel random forest of ``config`` (see :func:`geoseg.baseline.obia.run_obia`
    for ``config`` and ``out``) and map its scenes."""
    t0 = time.perf_counter()
    b = load_baseline(config)
    cfg, pc = b.cfg, b.cfg.pixel
    p = plan(b)
    out_path = b.output(out, "pixel-rf")
    maps = outputs(out_path, p.mapped, overwrite)
    rpath = report_path(out_path, "pixel_rf", overwrite)
    indices = index_positions(cfg, p.bands) if pc.indices else ()
    names = [c.name for c in p.classes.classes]
    x, y = training_pixels(p, pc.samples_per_class, indices, cfg.seed)
    t_sample = time.perf_counter()
    model, counts = fit(pc.classifier, cfg.seed, x, y, names, "training pixels")
    t_fit = time.perf_counter()
    ids, nodata = class_ids_of(p.classes), p.classes.nodata
    with (
        staging(maps[0].parent, "pixel-rf") as stage,
        connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c,
    ):
        remote = c.scatter(model, broadcast=True)
        scenes = []
        for s, path in zip(p.mapped, maps, strict=True):
            blocks = block_windows(s.info.height, s.info.width, cfg.block)
            items = [
                (w, str(stage / f"s{s.index:03d}_b{bi:05d}_{bj:05d}.npz"), None)
                for bi, bj, w in blocks
            ]
            scenes.append((s, path, items))
        tasks = [(s, w, npz) for s, _, items in scenes for w, npz, _ in items]
        run_tasks(
            c,
            classify_block,
            [(s.scene, p.bands, indices, ids, nodata, w, npz) for s, w, npz in tasks],
            args=(remote,),
            describe=lambda i: f"block of scene {tasks[i][0].name} ({rows_columns(tasks[i][1])})",
        )
        run_tasks(
            c,
            write_class_cog,
            [
                (
                    str(path),
                    items,
                    p.classes,
                    grid_of(s),
                    {**tags("pixel-rf"), **scene_tags(s.scene.paths)},
                    str(stage),
                )
                for s, path, items in scenes
            ],
            describe=lambda i: f"the class map {maps[i].name}",
            doing="writing it",
        )
    seconds = time.perf_counter() - t0
    report = base_report("pixel-rf", b, p, maps)
    report.update(
        {
            "features": [f"b{k}" for k in p.bands] + [n for n, _, _ in indices],
            "classifier": {
                "kind": pc.classifier.kind,
                "params": {
                    k: v
                    for k, v in model.get_params().items()
                    if isinstance(v, int | float | str | bool | type(None))
                },
            },
            "training_pixels": {
                "total": int(counts.sum()),
                "per_class": dict(zip(names, counts.tolist(), strict=True)),
            },
            "seconds": {
                "sample": round(t_sample - t0, 3),
                "fit": round(t_fit - t_sample, 3),
                "map": round(seconds - (t_fit - t0), 3),
                "total": round(seconds, 3),
            },
        }
    )
    return finish(report, rpath, maps, seconds)


def training_pixels(p: Plan, per_class: int, indices, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and class indices of about ``per_class`` training pixels per class."""
    n = len(p.classes.classes)
    cap = max(1, math.ceil(per_class / max(len(p.train_data), 1)))
    xs, ys = [], []
    for d, sp in p.train_data:
        anchors = collect_anchors(d, sp, n, cap=cap, seed=seed)
        rc = np.concatenate([np.asarray(a, dtype=np.int64).reshape(-1, 2) for a in anchors.coords])
        cls = np.concatenate(
            [np.full(len(a), k, dtype=np.uint8) for k, a in enumerate(anchors.coords)]
        )
        for w in scan_windows(d.height, d.width):
            inside = (
                (rc[:, 0] >= w.row)
                & (rc[:, 0] < w.row_end)
                & (rc[:, 1] >= w.col)
                & (rc[:, 1] < w.col_end)
            )
            if not inside.any():
                continue
            x, _ = d.scene.read(w, p.bands)
            lab = np.full((w.height, w.width), IGNORE, dtype=np.uint8)
            lab[rc[inside, 0] - w.row, rc[inside, 1] - w.col] = cls[inside]
            pick = lab != IGNORE
            xs.append(pixel_features(x, pick, indices))
            ys.append(lab[pick].astype(np.int64))
    if not xs:
        return np.zeros((0, len(p.bands) + len(indices)), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def classify_block(
    model,
    scene: Scene,
    bands: list[int],
    indices,
    class_ids: np.ndarray,
    nodata: int,
    w: Window,
    path: str,
) -> None:
    """One Dask task: the classes of block ``w``'s valid pixels, staged at ``path``."""
    x, valid = scene.read(w, bands)
    out = np.full((w.height, w.width), nodata, dtype=np.uint8)
    if valid.any():
        probs = predict_proba(model, pixel_features(x, valid, indices), len(class_ids))
        out[valid] = class_ids[probs.argmax(axis=1)]
    save_npz(path, cls=out)

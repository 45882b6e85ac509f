"""Worker-side work: predicting one block into the staging area, and assembling the COGs.

A block task predicts the tiles the block owns, blends them into fixed-point sums over the
block plus the strips its tiles reach into the neighbours right and below, and stages:
``cls`` (the block's classes from its own tiles), optionally ``probs``, and the sums of the
strips shared with neighbours. The assembly step completes each block's top and left strips
with its neighbours' spill and streams the blocks into the COG(s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np

from geoseg.core.blend import add_patch, finalize, head_values
from geoseg.core.grid import Block, BlockGrid, Window
from geoseg.engine.prefetch import RowPrefetch
from geoseg.io.stac import write_products
from geoseg.io.staged import save_npz
from geoseg.model.bundle import read_meta

log = logging.getLogger(__name__)

_lock = threading.Lock()
_predictors: dict[tuple, object] = {}


def _weights_stamp(bundle: str) -> tuple:
    """The bundle's files' sizes and times: a bundle retrained in place (a warm service keeps
    workers for hours) is loaded afresh, not served from the cache."""
    out = []
    for p in sorted(Path(bundle).glob("*")):
        with contextlib.suppress(OSError):
            st = p.stat()
            out.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def get_predictor(job):
    """The worker's predictor for this bundle, loaded once per worker process."""
    import torch

    from geoseg.model.runner import TilePredictor

    o = job.options
    device = o.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    key = (os.path.abspath(job.bundle), _weights_stamp(job.bundle), device, o.batch_size)
    key += (o.precision, o.runtime, o.tta, job.tile)
    with _lock:
        p = _predictors.get(key)
        if p is None:
            if device == "cpu":
                torch.set_num_threads(o.torch_threads)
            if os.environ.get("MALLOC_TRIM_THRESHOLD_"):
                log.warning(
                    "MALLOC_TRIM_THRESHOLD_ is set in this worker's environment; the "
                    "model runs ~40%% slower. Unset it (distributed.nanny."
                    "pre-spawn-environ) when starting workers."
                )
            p = TilePredictor(
                job.bundle,
                device=device,
                batch_size=o.batch_size,
                precision=None if o.precision == "auto" else o.precision,
                runtime="torch" if o.runtime == "auto" else o.runtime,
                tta=o.tta,
                threads=o.torch_threads,
                tile=job.tile,
            )
            _predictors[key] = p
    return p


def strip_windows(b: Block, blocks: BlockGrid) -> dict[str, Window]:
    """Windows (global pixels) of the strips block ``b`` stages for the assembly."""
    o = blocks.grid.overlap
    reg, ext = b.region, b.extent
    out: dict[str, Window] = {}
    if o == 0:
        return out
    if b.bi > 0:
        out["own_top"] = Window(reg.row, reg.col, min(o, reg.height), reg.width)
    if b.bj > 0:
        out["own_left"] = Window(reg.row, reg.col, reg.height, min(o, reg.width))
    right = ext.col_end - reg.col_end
    below = ext.row_end - reg.row_end
    if right > 0:
        out["spill_right"] = Window(reg.row, reg.col_end, reg.height, right)
    if below > 0:
        out["spill_bottom"] = Window(reg.row_end, reg.col, below, reg.width)
    if right > 0 and below > 0:
        out["spill_corner"] = Window(reg.row_end, reg.col_end, below, right)
    return out


def _tiles(b: Block, grid, src: RowPrefetch, origin, stats: dict):
    """The block's tiles in row order, once their rows are read; entirely nodata tiles are
    counted and skipped (they never reach the model)."""
    for ti in b.tiles_rows:
        for tj in b.tiles_cols:
            tw = grid.tile_window(ti, tj)
            src.wait(tw.row_end - origin[0])
            if not src.valid[tw.intersect(grid.scene).slices(origin)].any():
                stats["tiles_skipped"] += 1
                continue
            yield tw, (ti, tj)


def _predict_batch(pred, data, origin, batch, acc, grid, stats: dict) -> None:
    from geoseg.model.accumulate import fixed_weights

    x = np.stack([data[(slice(None),) + tw.slices(origin)] for tw, _ in batch])
    probs = pred.predict_tensor(x)  # on the model's device: blended there
    for (tw, (ti, tj)), p in zip(batch, probs, strict=True):
        acc.add_fixed(p, *fixed_weights(grid, ti, tj, acc.device), tw)
    stats["tiles"] += len(batch)


def _accumulator(pred, window: Window, n_classes: int):
    """Fixed-point sums on the model's device (model.accumulate: core.blend's arithmetic in
    torch, tested equal; on a CPU its fused multiply-round-add is ~3x faster than numpy's)."""
    from geoseg.model.accumulate import TorchAccumulator

    return TorchAccumulator(window, n_classes, pred.device)


def _finalize(acc, reg: Window, class_ids, valid, nodata: int, want_probs: bool):
    sums = acc.data[:, : reg.height, : reg.width]
    if acc.device.type == "cpu":  # numpy's argmax is several times faster than torch's here
        return finalize(sums.numpy(), class_ids, valid, nodata, want_probs)
    from geoseg.model.accumulate import finalize_torch

    return finalize_torch(sums, class_ids, valid, nodata, want_probs)


def _crash_hook(key: str) -> None:
    """Tests only: ``GEOSEG_TEST_CRASH_BLOCK=<block key>`` makes that block die the way a
    native crash does (SIGSEGV), every time, so the job's handling of it can be tested."""
    if os.environ.get("GEOSEG_TEST_CRASH_BLOCK") == key:
        os.kill(os.getpid(), signal.SIGSEGV)


class AssemblyCancelled(Exception):
    """The client asked the assembly to stop (its flag file in the staging folder)."""


def cancel_flag(job) -> Path:
    """The file the client creates to stop the job's assembly before it renames anything."""
    return Path(job.staging) / "CANCEL"


def _proceed(job) -> None:
    if cancel_flag(job).exists():
        raise AssemblyCancelled("the assembly was cancelled by the client")


# A block without one valid pixel stages only this marker: its classes would be nodata
# throughout and the sums it spills into its neighbours zero (no tile of it is predicted), so
# the assembly gives the same map from the marker; a scene whose data covers a corner of a
# huge grid stages little more than that corner.
EMPTY = "empty"


def predict_block(job, bi: int, bj: int) -> dict:
    """Predict block (bi, bj) into the staging area; reuse it if already staged."""
    t0 = time.perf_counter()
    b = job.blocks.block(bi, bj)
    path = job.block_path(b.key)
    stats = {"key": b.key, "pixels": b.region.size, "reused": False, "tiles": 0, "tiles_skipped": 0}
    stats["runtime"] = None
    if path.exists():
        stats["reused"] = True
        stats["seconds"] = time.perf_counter() - t0
        return stats
    _crash_hook(b.key)
    arrays = block_arrays(job, b, job.scene, stats)
    if stats["tiles"] == 0:  # not one valid pixel: a marker, not the block's arrays
        arrays = {EMPTY: np.zeros(0, dtype=np.uint8)}
    save_npz(path, **arrays)
    stats["seconds"] = time.perf_counter() - t0
    stats.update(peak_rss())
    return stats


def block_arrays(job, b: Block, scene, stats: dict) -> dict[str, np.ndarray]:
    """Block ``b`` predicted from ``scene`` (anything with ``read(window, bands)``, as
    :class:`geoseg.io.scene.Scene`): its classes (and probabilities) with the top and left
    strips still to complete from the neighbours (:func:`complete_block`), and the sums it
    spills into them. ``stats`` gets the tile counts and the runtime."""
    blocks = job.blocks
    pred = get_predictor(job)
    stats["runtime"] = pred.tag
    meta = pred.meta
    from geoseg.model.runner import normalize

    grid = blocks.grid
    origin = (b.read.row, b.read.col)
    cuts = sorted(
        {
            min(grid.tile_window(ti, b.tiles_cols[0]).row_end - b.read.row, b.read.height)
            for ti in b.tiles_rows
        }
        | {b.read.height}
    )

    def prepare(d, v):
        if job.radiometry is not None:  # --normalize scene|match, or two dates' PIF fit
            job.radiometry.apply(d)
        normalize(d, v, meta)

    src = RowPrefetch(scene, b.read, meta.bands, cuts, prepare=prepare)
    acc = _accumulator(pred, b.extent, meta.n_outputs)  # every head's channels alike
    bs = pred.batch_size
    batch: list[tuple[Window, tuple[int, int]]] = []
    for tw, tij in _tiles(b, grid, src, origin, stats):
        batch.append((tw, tij))
        if len(batch) == bs:
            _predict_batch(pred, src.data, origin, batch, acc, grid, stats)
            batch = []
    if batch:
        _predict_batch(pred, src.data, origin, batch, acc, grid, stats)
    src.join()
    valid = src.valid
    reg = b.region
    rs = reg.slices(origin)
    class_ids = np.asarray([c.id for c in meta.classes])
    nodata = meta.class_list.nodata
    cls, probs = _finalize(acc, reg, class_ids, valid[rs], nodata, job.options.probabilities)
    arrays: dict[str, np.ndarray] = {"cls": cls}
    if probs is not None:
        arrays["probs"] = probs
    if meta.n_outputs > meta.n_classes:  # the other heads' values (a border, ...)
        extra = acc.data[meta.n_classes :, : reg.height, : reg.width]
        arrays["heads"] = head_values(np.asarray(extra.cpu()), 0, valid[rs])
    for name, w in strip_windows(b, blocks).items():
        arrays[name] = acc.patch(w)
        arrays[name + "_origin"] = np.array([w.row, w.col], dtype=np.int64)
    return arrays


def peak_rss() -> dict:
    """This worker process's id and its peak resident memory so far (MiB)."""
    return {
        "pid": os.getpid(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def complete_block(job, b: Block, staged, neighbour, class_ids, nodata: int):
    """Block ``b``'s final classes and probabilities (or None) from its staged arrays and
    its neighbours': ``neighbour(block)`` gives a context manager over a staged mapping; the
    other heads' values are completed in ``staged["heads"]`` (a dict: in place). A block
    staged :data:`EMPTY` is nodata throughout (what its arrays would have held)."""
    if EMPTY in staged:
        reg = b.region
        cls = np.full((reg.height, reg.width), nodata, dtype=np.uint8)
        probs = None
        if job.options.probabilities:
            probs = np.full((len(class_ids), reg.height, reg.width), 255, dtype=np.uint8)
        if job.extra_heads:
            n = sum(h.channels for h in job.extra_heads)
            staged["heads"] = np.full((n, reg.height, reg.width), 255, dtype=np.uint8)
        return cls, probs
    cls = staged["cls"]
    probs = staged.get("probs")
    _complete_strips(job, b, staged, cls, probs, class_ids, nodata, neighbour)
    return cls, probs


def _staged_file(job):
    """The neighbour reader of the file path: each staged block's ``.npz``."""
    return lambda nb: np.load(job.block_path(nb.key))


def _complete_strips(
    job,
    b: Block,
    staged,
    cls: np.ndarray,
    probs: np.ndarray | None,
    class_ids: np.ndarray,
    nodata: int,
    neighbour,
) -> None:
    """Redo the top and left strips of ``b`` with the neighbours' spilled sums, in place."""
    blocks, o = job.blocks, job.overlap
    reg = b.region
    targets = []
    if b.bi > 0 and o:
        targets.append(("own_top", Window(reg.row, reg.col, min(o, reg.height), reg.width)))
    if b.bj > 0 and o and reg.height > (o if b.bi > 0 else 0):
        r0 = reg.row + (min(o, reg.height) if b.bi > 0 else 0)
        targets.append(("own_left", Window(r0, reg.col, reg.row_end - r0, min(o, reg.width))))
    if not targets:
        return
    neighbours = []
    for (di, dj), part in (
        ((0, -1), "spill_right"),
        ((-1, 0), "spill_bottom"),
        ((-1, -1), "spill_corner"),
    ):
        if b.bi + di < 0 or b.bj + dj < 0:
            continue
        with neighbour(blocks.block(b.bi + di, b.bj + dj)) as z:
            if part in z:
                neighbours.append((z[part], tuple(z[part + "_origin"])))
    heads = staged.get("heads")  # every caller stages into a dict
    for own, t in targets:
        sums = np.zeros((staged[own].shape[0], t.height, t.width), dtype=np.int32)
        add_patch(sums, (t.row, t.col), staged[own], tuple(staged[own + "_origin"]))
        for patch, porigin in neighbours:
            add_patch(sums, (t.row, t.col), patch, porigin)
        s = t.slices((reg.row, reg.col))
        valid = cls[s] != nodata
        c, p = finalize(sums, class_ids, valid, nodata, want_probs=probs is not None)
        cls[s] = c
        if probs is not None:
            probs[:, s[0], s[1]] = p
        if heads is not None:
            heads[:, s[0], s[1]] = head_values(sums, len(class_ids), valid)


def assemble(job, out: str, meta_tags: dict[str, str]) -> dict:
    """Build the class COG (and probability/confidence COGs) from the staged blocks."""
    from geoseg.io.cog import CogWriter, RasterSpec

    t0 = time.perf_counter()
    _remove_leftovers(Path(out), Path(job.staging), [h.name for h in job.extra_heads])
    meta = read_meta(job.bundle)
    classes = meta.class_list
    class_ids = np.asarray(classes.ids)
    nodata = classes.nodata
    info = job.scene.info
    base = dict(height=job.height, width=job.width, crs=info.crs, transform=info.transform)
    scratch = Path(job.staging)
    writers = {
        "cls": CogWriter(
            RasterSpec(
                count=1,
                nodata=nodata,
                descriptions=["class"],
                tags=meta_tags,
                classes=classes,
                **base,
            ),
            scratch,
            "cls",
        )
    }
    if job.options.probabilities:
        names = [c.name for c in classes.classes]
        writers["probs"] = CogWriter(
            RasterSpec(
                count=len(names),
                nodata=255,
                descriptions=[f"p({n})" for n in names],
                scales=[1 / 254] * len(names),
                tags=meta_tags,
                **base,
            ),
            scratch,
            "probs",
        )
        writers["conf"] = CogWriter(
            RasterSpec(
                count=1,
                nodata=255,
                descriptions=["confidence"],
                scales=[1 / 254],
                tags=meta_tags,
                **base,
            ),
            scratch,
            "conf",
        )
    for h in job.extra_heads:  # one COG per other head: <map>_<head>.tif
        writers[h.name] = CogWriter(
            RasterSpec(
                count=h.channels,
                nodata=255,
                descriptions=[h.name] * h.channels,
                scales=[1 / 254] * h.channels,
                tags=meta_tags,
                **base,
            ),
            scratch,
            h.name,
        )
    proceed = partial(_proceed, job)
    try:
        for b in job.blocks:
            proceed()
            with np.load(job.block_path(b.key)) as z:
                staged = {k: z[k] for k in z.files}
            cls, probs = complete_block(job, b, staged, _staged_file(job), class_ids, nodata)
            writers["cls"].write(b.region, cls)
            at = 0
            for h in job.extra_heads:
                writers[h.name].write(b.region, staged["heads"][at : at + h.channels])
                at += h.channels
            if probs is not None:
                writers["probs"].write(b.region, probs)
                conf = probs.max(axis=0)
                conf[cls == nodata] = 255
                writers["conf"].write(b.region, conf)
        fin = dict(before_rename=proceed, creation={"LEVEL": job.options.cog_level})
        outs = {"classes": str(writers["cls"].finish(out, **fin))}
        if job.options.probabilities:
            stem = Path(out)
            for k, suffix in (("probs", "_probabilities"), ("conf", "_confidence")):
                p = stem.with_name(stem.stem + suffix + stem.suffix)
                outs[k] = str(writers[k].finish(p, resampling="AVERAGE", **fin))
        for h in job.extra_heads:
            p = Path(out).with_name(f"{Path(out).stem}_{h.name}{Path(out).suffix}")
            w = writers[h.name]
            outs[h.name] = str(w.finish(p, resampling="AVERAGE", **fin))
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    write_products(outs, classes, meta_tags)  # a STAC Item beside each, written here
    outs["seconds"] = time.perf_counter() - t0
    outs.update(peak_rss())
    return outs


def _remove_leftovers(out: Path, staging: Path, heads: list[str]) -> None:
    """Partial files of an earlier assembly that died (a killed worker or job)."""
    stems = [out.stem, out.stem + "_probabilities", out.stem + "_confidence"]
    stems += [f"{out.stem}_{h}" for h in heads]
    junk = [p for s in stems for p in out.parent.glob(f".{s}*.part*")]
    junk += [p for p in staging.glob("*.tif")]
    for p in junk:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def remove_staging(staging: str) -> None:
    """Remove a job's staging folder, and its parent when no other job is staged there."""
    import shutil

    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(staging)
    with contextlib.suppress(OSError):
        Path(staging).parent.rmdir()

"""Staged blocks to a Zarr store, one task per block and no single writer (``--out MAP.zarr``).

The client creates the store's metadata and coordinates (no pixel); every block task completes
its block from its neighbours' staged strips (the COG assembly's arithmetic,
:func:`geoseg.engine.blocks.complete_block`) and writes its own region, whose chunks no other
block touches. The finished store is renamed into place.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.cluster.tasks import run_tasks
from geoseg.engine.blocks import _staged_file, complete_block, peak_rss
from geoseg.engine.supervise import block_naming
from geoseg.io.crs import with_authority
from geoseg.io.zarr import create_store, publish, write_region
from geoseg.model.bundle import read_meta


def zarr_block(job, bi: int, bj: int, part: str) -> dict:
    """Complete block (bi, bj) from the staging and write it into the store at ``part``."""
    t0 = time.perf_counter()
    meta = read_meta(job.bundle)
    classes = meta.class_list
    b = job.blocks.block(bi, bj)
    with np.load(job.block_path(b.key)) as z:
        staged = {k: z[k] for k in z.files}
    cls, probs = complete_block(
        job, b, staged, _staged_file(job), np.asarray(classes.ids), classes.nodata
    )
    write_region(part, b.region.row, b.region.col, cls, probs)
    return {"seconds": time.perf_counter() - t0, **peak_rss()}


def write_zarr(c: Client, job, out: Path, tags: dict[str, str]) -> dict:
    """The job's staged blocks as the Zarr store ``out``; returns what the assembly returns."""
    t0 = time.perf_counter()
    meta = read_meta(job.bundle)
    info = job.scene.info
    blocks = job.blocks
    part = create_store(
        out,
        height=job.height,
        width=job.width,
        chunk=blocks.tiles_per_block * job.grid.stride,
        crs=with_authority(info.crs),
        transform=info.transform,
        classes=meta.class_list,
        probabilities=job.options.probabilities,
        attrs=tags,
    )
    try:
        items = [(b.bi, b.bj, str(part)) for b in blocks]
        stats = run_tasks(c, zarr_block, items, args=(job,), **block_naming(job, list(blocks)))
        publish(part, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(part)
        raise
    peak = max(stats, key=lambda s: s["peak_rss_mb"]) if stats else peak_rss()
    return {"classes": str(out), "seconds": time.perf_counter() - t0, **peak}

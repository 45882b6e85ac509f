"""Worker side of change detection: one task per block window, then one assembly task.

A block task reads both dates' classes (and confidences) over its window of the output grid,
warping where a date is on another grid (:mod:`geoseg.io.grid`), and computes:

* the from-to code ``from_id * 100 + to_id`` (UInt16, 65535 where either date has no class);
* the status: unchanged (same class), changed (classes differ and both dates' largest class
  probability >= the threshold), uncertain (classes differ, either date below it), nodata 0;
* counts that add up over blocks: the (n+1) x (n+1) pair counts of the two dates' class
  indices (row/column n: no class), the uncertain pixels per transition, a histogram of the
  lower of the two confidences over pixels whose classes differ (bins of 1/254), and the
  comparison with a reference raster or the values at reference points.

It stages ``code`` and ``status`` as a file; the assembly task streams the staged blocks into
the COGs. The client never holds a raster.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geoseg.change.style import (
    CHANGED,
    CODE_FACTOR,
    CODE_NODATA,
    STATUS_CLASSES,
    STATUS_NODATA,
    UNCERTAIN,
    UNCHANGED,
    legend_palette,
    write_legend_sidecars,
)
from geoseg.core import metrics as mx
from geoseg.core.classes import ClassList
from geoseg.core.grid import BlockGrid, TileGrid, Window
from geoseg.io.grid import Layer, RasterGrid
from geoseg.io.staged import save_npz

CONF_BINS = 255  # confidence histogram bins: round(p * 254), 0..254


@dataclass(frozen=True)
class DateInput:
    classes: Layer
    table: dict[int, int]  # class id -> index in the job's class list
    probs: Layer | None  # probabilities (or confidence) raster, for the gate


@dataclass(frozen=True)
class RasterRef:
    """A reference raster of change (0/1) or of from-to codes, read onto the grid."""

    layer: Layer
    kind: str  # "change" or "transitions"
    table: dict[int, int]  # value -> category (0/1, or transition index from * n + to)


@dataclass(frozen=True)
class ChangeJob:
    grid: RasterGrid
    before: DateInput
    after: DateInput
    ids: tuple[int, ...]  # class ids by index, both dates
    threshold: float | None  # None: no probabilities, no gate
    staging: str
    block: int
    reference: RasterRef | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def windows(self) -> list[Window]:
        """Block windows of about ``block`` pixels (a multiple of 32), row by row."""
        blocks = BlockGrid.from_block_size(
            TileGrid(self.grid.height, self.grid.width, 32, 0), self.block
        )
        return [b.region for b in blocks]

    def block_path(self, w: Window) -> Path:
        return Path(self.staging) / f"r{w.row:07d}_c{w.col:07d}.npz"


def _read_confidence(job: ChangeJob, w: Window) -> np.ndarray | None:
    if job.threshold is None:
        return None
    cb = job.before.probs.read_confidence(job.grid, w)
    ca = job.after.probs.read_confidence(job.grid, w)
    return np.minimum(cb, ca)  # NaN (a masked probability) stays NaN: not confident


def change_block(
    job: ChangeJob,
    w: Window,
    points: tuple[np.ndarray, np.ndarray] | None,
) -> dict:
    """Compute, stage and count block ``w`` (see the module docstring)."""
    t0 = time.perf_counter()
    b, unknown_b = job.before.classes.read_classes(job.grid, w, job.before.table)
    a, unknown_a = job.after.classes.read_classes(job.grid, w, job.after.table)
    valid = (b >= 0) & (a >= 0)
    differ = valid & (b != a)
    ids = np.asarray(job.ids, dtype=np.uint16)
    code = np.full(b.shape, CODE_NODATA, dtype=np.uint16)
    code[valid] = ids[b[valid]] * CODE_FACTOR + ids[a[valid]]
    status = np.full(b.shape, STATUS_NODATA, dtype=np.uint8)
    status[valid] = UNCHANGED
    low = _read_confidence(job, w)
    hist = np.zeros(CONF_BINS, dtype=np.int64)
    if low is None:
        status[differ] = CHANGED
    else:
        confident = low >= job.threshold  # NaN (no probability): not confident
        status[differ & confident] = CHANGED
        status[differ & ~confident] = UNCERTAIN
        q = np.rint(np.nan_to_num(low[differ], nan=0.0) * 254).astype(np.int64)
        hist += np.bincount(np.clip(q, 0, CONF_BINS - 1), minlength=CONF_BINS)
    n = job.n
    unc = status == UNCERTAIN
    res = {
        "window": w,
        "pairs": mx.pair_counts(b, a, n),
        "uncertain": mx.pair_counts(np.where(unc, b, -1), np.where(unc, a, -1), n)[:n, :n],
        "hist": hist,
        "unknown_before": unknown_b,
        "unknown_after": unknown_a,
    }
    trans = np.where(valid, b.astype(np.int32) * n + a, -1)
    if job.reference is not None:
        res.update(_compare_raster(job, w, status, differ, valid, trans))
    if points is not None:
        rows, cols = points[0] - w.row, points[1] - w.col
        res["point_status"] = status[rows, cols]
        res["point_transition"] = trans[rows, cols]
    save_npz(job.block_path(w), code=code, status=status)
    res["seconds"] = time.perf_counter() - t0
    return res


def _compare_raster(job: ChangeJob, w: Window, status, differ, valid, trans) -> dict:
    ref = job.reference
    r, unknown = ref.layer.read_classes(job.grid, w, ref.table)
    n = job.n
    r_change = np.where(r >= 0, r // n != r % n, -1) if ref.kind == "transitions" else r
    gated = np.where(valid, status == CHANGED, -1)
    raw = np.where(valid, differ, -1)
    out = {
        "unknown_reference": unknown,
        "ref_change_gated": mx.pair_counts(gated, r_change, 2),
        "ref_change_raw": mx.pair_counts(raw, r_change, 2),
    }
    if ref.kind == "transitions":
        out["ref_transitions"] = mx.confusion_matrix(trans, r, n * n)
    return out


def assemble_change(
    job: ChangeJob, fromto: str, mask: str, legend: ClassList, tags: dict[str, str]
) -> dict[str, str]:
    """Stream the staged blocks into the from-to COG (with its legend sidecars) and the status
    COG, and into a plain GeoTIFF of the changed pixels' codes (for the polygons)."""
    from geoseg.io.cog import CogWriter, RasterSpec

    g = job.grid
    base = dict(height=g.height, width=g.width, crs=g.crs, transform=g.transform, tags=tags)
    scratch = Path(job.staging)
    writers = {
        "fromto": CogWriter(
            RasterSpec(
                count=1,
                nodata=CODE_NODATA,
                dtype="uint16",
                descriptions=["from_id * 100 + to_id"],
                palette=legend_palette(legend),
                **base,
            ),
            scratch,
            "fromto",
        ),
        "mask": CogWriter(
            RasterSpec(
                count=1,
                nodata=STATUS_NODATA,
                classes=STATUS_CLASSES,
                descriptions=["change status"],
                **base,
            ),
            scratch,
            "mask",
        ),
        "changed": CogWriter(
            RasterSpec(
                count=1,
                nodata=CODE_NODATA,
                dtype="uint16",
                descriptions=["code of changed pixels"],
                **base,
            ),
            scratch,
            "changed",
        ),
    }
    sidecars: list[Path] = []
    try:
        for w in job.windows():
            with np.load(job.block_path(w)) as z:
                code, status = z["code"], z["status"]
            writers["fromto"].write(w, code)
            writers["mask"].write(w, status)
            writers["changed"].write(w, np.where(status == CHANGED, code, CODE_NODATA))
        writers["changed"].close()
        sidecars = write_legend_sidecars(Path(fromto), legend)
        out = {
            "fromto": str(writers["fromto"].finish(fromto)),
            "mask": str(writers["mask"].finish(mask)),
            "changed_codes": str(writers["changed"].tmp),
        }
        sidecars += _stac_items(out, legend, tags)
    except BaseException:
        for wr in writers.values():
            wr.abort()
        for p in sidecars:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        raise
    return out


def _stac_items(out: dict[str, str], legend: ClassList, tags: dict[str, str]) -> list[Path]:
    """STAC Items beside the from-to and status COGs (classes: the codes and the statuses)."""
    from geoseg.io.stac import write_item

    dates = (tags.get("GEOSEG_DATE_FROM"), tags.get("GEOSEG_DATE_TO"))
    common = {
        "roles": ["data"],
        "date": dates[1],
        "model": tags.get("GEOSEG_MODEL"),
        "properties": {"geoseg:date_from": dates[0], "geoseg:date_to": dates[1]},
    }
    return [
        write_item(out["fromto"], classes=legend, title="land-cover change, from-to", **common),
        write_item(out["mask"], classes=STATUS_CLASSES, title="change status", **common),
    ]

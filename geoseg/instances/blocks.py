"""The block tasks of ``geoseg instances``: label a block's objects, then write its scene-wide
ids, polygons and confidence sums once :func:`geoseg.core.instances.resolve` has numbered them;
and the one task that streams the staged id blocks into the instance COG."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.features import shapes
from rasterio.windows import Window as RioWindow

from geoseg.core.grid import Window
from geoseg.core.instances import INSTANCE_NODATA, BlockObjects, border_mask, grow, label_block
from geoseg.io.classmap import ClassMap
from geoseg.io.cog import CogWriter, RasterSpec
from geoseg.io.stac import write_item
from geoseg.io.staged import save_npz


@dataclass(frozen=True)
class InstanceJob:
    cmap: ClassMap
    things: tuple[int, ...]
    connectivity: int
    staging: str
    confidence: str | None = None  # the map's confidence COG (uint8, scale 1/254), if any
    boundary: str | None = None  # the map's border head (uint8, scale 1/254): splits objects
    threshold: float = 0.5  # border probability from which a pixel is border
    grow: int = 0  # pixels the seeds grow back into the border

    def block_path(self, w: Window, kind: str) -> Path:
        return Path(self.staging) / f"{kind}-{w.row}-{w.col}.npz"


def read_window(path: str, w: Window) -> np.ndarray:
    """Band 1 of ``path`` over window ``w``."""
    with rasterio.open(path) as src:
        return src.read(1, window=RioWindow(w.col, w.row, w.width, w.height))


def _border(job: InstanceJob, w: Window, cls: np.ndarray) -> np.ndarray | None:
    """The border pixels of the thing classes in window ``w`` (None without a border head)."""
    if job.boundary is None:
        return None
    return border_mask(read_window(job.boundary, w), job.threshold) & np.isin(cls, job.things)


def label_task(job: InstanceJob, w: Window) -> BlockObjects:
    """Label block ``w``'s objects; stage the local labels, return what the seam pass needs."""
    cls = read_window(job.cmap.path, w)
    origin, width = (w.row, w.col), job.cmap.width
    border = _border(job, w, cls)
    labels, objs = label_block(cls, list(job.things), origin, width, job.connectivity, border)
    save_npz(job.block_path(w, "local"), labels=labels)
    return objs


def _grown(job: InstanceJob, w: Window, lut: np.ndarray, around: list) -> np.ndarray:
    """Block ``w``'s ids with the seeds grown into the border: the block and ``job.grow``
    pixels of its neighbours (``around``: their windows and id tables) grown together, as
    a whole-scene run would (a step reaches one pixel further)."""
    g, cm = job.grow, job.cmap
    r0, c0 = max(w.row - g, 0), max(w.col - g, 0)
    pad = Window(r0, c0, min(w.row_end + g, cm.height) - r0, min(w.col_end + g, cm.width) - c0)
    ids = np.zeros((pad.height, pad.width), dtype=np.uint32)
    for nw, nlut in [(w, lut), *around]:
        part = nw.intersect(pad)
        if part is None:
            continue
        with np.load(job.block_path(nw, "local")) as z:
            local = z["labels"][part.slices((nw.row, nw.col))]
        ids[part.slices((pad.row, pad.col))] = nlut[local]
    cls = read_window(cm.path, pad)
    ids = grow(ids, cls, _border(job, pad, cls), g)
    return ids[w.slices((pad.row, pad.col))]


def finish_task(job: InstanceJob, w: Window, lut: np.ndarray, around: list = ()) -> dict:
    """Block ``w`` with scene-wide ids (staged for the COG), its polygons (pixel-exact, world
    coordinates, WKB) with their ids, per id the summed confidence and its pixels, and the
    pixels each id took from the border (``grown_id``, ``grown_n``)."""
    with np.load(job.block_path(w, "local")) as z:
        seeds = lut[z["labels"]]
    ids = seeds
    if job.boundary is not None and job.grow:
        ids = _grown(job, w, lut, list(around))
    save_npz(job.block_path(w, "ids"), ids=ids)
    transform = job.cmap.window_transform(w)
    pieces = [
        (shapely.geometry.shape(g).wkb, int(v))
        for g, v in shapes(
            ids.astype(np.int32), mask=ids > 0, connectivity=job.connectivity, transform=transform
        )
    ]
    out = {
        "wkb": [p[0] for p in pieces],
        "id": np.asarray([p[1] for p in pieces], dtype=np.int64),
    }
    took = ids[(ids > 0) & (seeds == 0)]
    out["grown_id"], out["grown_n"] = np.unique(took, return_counts=True)
    if job.confidence:
        conf = read_window(job.confidence, w).astype(np.float64)
        ok = (ids > 0) & (conf <= 254)
        present, inv = np.unique(ids[ok], return_inverse=True)
        out["conf_id"] = present.astype(np.int64)
        out["conf_sum"] = np.bincount(inv, weights=conf[ok] / 254.0, minlength=len(present))
        out["conf_n"] = np.bincount(inv, minlength=len(present))
    return out


def write_ids_cog(job: InstanceJob, out: str, windows: list[Window], tags: dict) -> str:
    """Stream the staged id blocks into the instance COG ``out`` (uint32, 0 = none)."""
    cm = job.cmap
    writer = CogWriter(
        RasterSpec(
            height=cm.height,
            width=cm.width,
            count=1,
            crs=cm.crs,
            transform=cm.transform,
            nodata=INSTANCE_NODATA,
            dtype="uint32",
            descriptions=["instance"],
            tags=tags,
        ),
        job.staging,
        f"ids-{Path(out).stem}",
    )
    try:
        for w in windows:
            with np.load(job.block_path(w, "ids")) as z:
                writer.write(w, z["ids"])
        path = writer.finish(out)
    except BaseException:
        writer.abort()
        raise
    write_item(  # the counts per class travel with the product
        path,
        title="instances (one id per object, 0 = none)",
        roles=["data"],
        date=tags.get("GEOSEG_DATE"),
        model=tags.get("GEOSEG_MODEL"),
        sources=[s for s in tags.get("GEOSEG_SOURCE", "").split(",") if s],
        properties={"geoseg:instance_counts": json.loads(tags["GEOSEG_INSTANCE_COUNTS"])},
    )
    return str(path)

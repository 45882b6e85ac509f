"""``geoseg harmonize LATER --to EARLIER --out OUT.tif``: the later scene with its bands put
onto the earlier scene's radiometry (pseudo-invariant features, :mod:`geoseg.harmonize.pif`),
written block by block on the cluster as a float32 COG on the later scene's own grid.

Invalid pixels become NaN (the output's nodata: a mapped value can take any number, so no
finite nodata value is safe). The gains, offsets and PIF statistics go into the COG tags
(``GEOSEG_HARMONIZE``) and the returned report.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core.grid import Window
from geoseg.core.radiometry import BandMapping
from geoseg.errors import GeoSegError
from geoseg.harmonize.pif import pif_mapping
from geoseg.io.cog import CogWriter, RasterSpec, check_output
from geoseg.io.scene import Scene
from geoseg.io.staged import block_windows, save_npz, staging


@dataclass
class HarmonizeResult:
    path: str
    mapping: BandMapping
    report: dict
    seconds: float


def harmonize(
    later,
    to,
    out: str | Path,
    *,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    block: int = 2048,
    overwrite: bool = False,
) -> HarmonizeResult:
    """Fit ``later`` (a raster, or band files) onto ``to`` (the earlier scene) and write the
    fitted later scene to ``out``."""
    t0 = time.perf_counter()
    later_s, earlier_s = Scene.of(later), Scene.of(to)
    n = later_s.info.count
    if earlier_s.info.count != n:
        raise GeoSegError(
            f"the later scene has {n} bands and the earlier {earlier_s.info.count}: "
            "harmonize needs the same bands on both dates"
        )
    out = check_output(out, overwrite)
    bands = list(range(1, n + 1))
    with connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c:
        mapping, report = pif_mapping(c, later_s, earlier_s, bands)
        info = later_s.info
        with staging(out.parent, "harmonize") as st:
            items = [
                (w, str(st / f"b{bi}_{bj}.npz"))
                for bi, bj, w in block_windows(info.height, info.width, block)
            ]
            run_tasks(
                c,
                apply_block,
                items,
                args=(later_s, bands, mapping),
                describe=name_windows([w for w, _ in items]),
            )
            tags = {
                "GEOSEG_HARMONIZE": json.dumps(report),
                "GEOSEG_SOURCE": ",".join(later_s.paths),
                "GEOSEG_REFERENCE": ",".join(earlier_s.paths),
            }
            path = c.submit(assemble, later_s, items, str(out), str(st), tags, pure=False).result()
    report["seconds"] = time.perf_counter() - t0
    return HarmonizeResult(path, mapping, report, report["seconds"])


def apply_block(scene: Scene, bands, mapping: BandMapping, w: Window, path: str) -> None:
    """Read window ``w`` of the later scene, map its bands, stage them (a worker task)."""
    data, valid = scene.read(w, bands)
    mapping.apply(data)
    data[:, ~valid] = np.nan
    save_npz(path, data=data)


def assemble(scene: Scene, items, out: str, scratch: str, tags: dict) -> str:
    """Stream the staged blocks into the float32 COG ``out`` (one task)."""
    info = scene.info
    writer = CogWriter(
        RasterSpec(
            height=info.height,
            width=info.width,
            count=info.count,
            crs=info.crs,
            transform=info.transform,
            nodata=float("nan"),
            dtype="float32",
            descriptions=list(info.band_names),
            tags=tags,
        ),
        scratch,
        "harmonized",
    )
    try:
        for w, path in items:
            with np.load(path) as z:
                writer.write(w, z["data"])
        return str(writer.finish(out, resampling="AVERAGE"))
    except BaseException:
        writer.abort()
        raise

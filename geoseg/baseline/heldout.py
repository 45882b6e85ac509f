"""Reference rasters of the held-out labels, for ``geoseg compare`` (or ``geoseg evaluate``).

For each mapped scene: its labels where ``geoseg train`` did not train, i.e. the validation
part of a ``split`` scene (not its buffer) and every labelled pixel of ``val`` and ``test``
scenes; everything else is nodata. The rasters are class COGs on the scene grid, named like
the baselines' maps (one .tif, or ``NNN_<name>.tif`` files in a folder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geoseg.baseline.config import load_baseline
from geoseg.baseline.scenes import outputs, plan
from geoseg.errors import GeoSegError
from geoseg.io.cog import CogWriter, RasterSpec
from geoseg.io.staged import class_ids_of, staging
from geoseg.train.labels import IGNORE
from geoseg.train.sampling import scan_windows


def write_heldout_reference(
    config,
    out: str | Path,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write the held-out reference of each scene the baseline ``config`` maps into ``out``;
    returns the paths (``out``: as for :func:`~geoseg.baseline.obia.run_obia`)."""
    b = load_baseline(config)
    p = plan(b)
    paths = outputs(b.output(out, "heldout"), p.mapped, overwrite)
    unlabelled = [s.name for s in p.mapped if s.labels is None]
    if unlabelled:
        raise GeoSegError(
            f"scenes without labels have no held-out reference: "
            f"{', '.join(unlabelled[:5])} (choose others with map:)"
        )
    ids = class_ids_of(p.classes)
    nodata = p.classes.nodata
    with staging(paths[0].parent, "heldout") as stage:
        for s, path in zip(p.mapped, paths, strict=True):
            info = s.info
            src = s.labels.open()
            writer = CogWriter(
                RasterSpec(
                    height=info.height,
                    width=info.width,
                    count=1,
                    crs=info.crs,
                    transform=info.transform,
                    nodata=nodata,
                    descriptions=["reference class"],
                    tags={"GEOSEG_METHOD": "heldout-reference", "GEOSEG_ROLE": s.role},
                    classes=p.classes,
                ),
                stage,
                f"ref{s.index}",
            )
            try:
                for w in scan_windows(info.height, info.width):
                    y = src.read(w)
                    held = y != IGNORE
                    if s.role == "split":
                        held &= s.split.val_mask(w)
                    elif s.role == "train":
                        held[:] = False
                    block = np.full(y.shape, nodata, dtype=np.uint8)
                    block[held] = ids[y[held]]
                    writer.write(w, block)
                writer.finish(path)
            except BaseException:
                writer.abort()
                raise
    return paths

"""``geoseg baseline otsu``: a two-class map from Otsu's threshold on a spectral index.

NDWI (McFeeters 1996: (green - nir) / (green + nir)) above the threshold is water; NDVI
((nir - red) / (nir + red)) above it is vegetation. The threshold is Otsu's
(skimage.filters.threshold_otsu) on the histogram of the index over all valid pixels of the
scene, summed from one Dask task per block (fixed bins on [-1, 1], so it does not depend on
the blocks); a second pass classifies the blocks and a class COG is built like the engine's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.baseline.features import normalised_difference
from geoseg.baseline.result import finish, report_path, scene_tags, tags
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core.classes import load_classes
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.cog import check_output
from geoseg.io.scene import Scene
from geoseg.io.staged import block_windows, save_npz, staging, write_class_cog
from geoseg.version import __version__

INDICES = {  # index: (band roles a, b of (a - b) / (a + b), target class, its colour)
    "ndwi": ("green", "nir", "Water", "#2b83ba"),
    "ndvi": ("nir", "red", "Vegetation", "#1a9641"),
}
BINS = 2000
TARGET, OTHER = 1, 2


def parse_bands(text: str | dict[str, int] | None) -> dict[str, int]:
    """``"green=2,nir=4"`` -> {"green": 2, "nir": 4} (scene band numbers)."""
    if isinstance(text, dict):
        return text
    out = {}
    for part in (text or "").split(","):
        role, sep, num = part.strip().partition("=")
        if not sep or not num.strip().isdigit():
            raise GeoSegError(f"--bands {text!r}: give ROLE=BAND pairs, e.g. green=2,nir=4")
        out[role.strip().lower()] = int(num)
    return out


def run_otsu(
    scene,
    out: str | Path,
    *,
    index: str = "ndwi",
    bands: str | dict[str, int] | None = None,
    threshold: float | None = None,
    block: int = 2048,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
):
    """Threshold ``index`` of ``scene`` (a raster or band files) into the two-class COG
    ``out`` (1 = water / vegetation, 2 = the rest). ``bands``: the scene band numbers of the
    roles the index needs; ``threshold``: a fixed one instead of Otsu's. Returns a
    :class:`~geoseg.baseline.result.BaselineResult`."""
    t0 = time.perf_counter()
    if index not in INDICES:
        raise GeoSegError(f"--index {index!r}: use one of {', '.join(INDICES)}")
    a_role, b_role, target, color = INDICES[index]
    roles = parse_bands(bands)
    missing = [r for r in (a_role, b_role) if r not in roles]
    if missing:
        raise GeoSegError(
            f"{index.upper()} needs the band numbers of {a_role} and {b_role}: "
            f"pass --bands {a_role}=N,{b_role}=M"
        )
    sc = Scene.of(scene)
    pair = [roles[a_role], roles[b_role]]
    sc.check_bands(pair)
    out = check_output(out, overwrite)
    rpath = report_path(out, "otsu", overwrite)
    classes = load_classes(
        [
            {"id": TARGET, "name": target, "color": color},
            {"id": OTHER, "name": f"Not {target.lower()}", "color": "#d9d9d9"},
        ]
    )
    info = sc.info
    windows = block_windows(info.height, info.width, block)
    with (
        staging(out.parent, "otsu") as stage,
        connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c,
    ):
        named = name_windows([w for _, _, w in windows])
        counts = sum(
            run_tasks(
                c, index_histogram, [(w,) for _, _, w in windows], args=(sc, pair), describe=named
            )
        )
        if not counts.sum():
            raise GeoSegError(f"{sc.paths[0]} has no valid pixels to threshold")
        edges = np.linspace(-1, 1, BINS + 1)
        otsu = _otsu(counts, (edges[:-1] + edges[1:]) / 2)
        t = otsu if threshold is None else float(threshold)
        items = [(w, str(stage / f"b{bi:05d}_{bj:05d}.npz"), None) for bi, bj, w in windows]
        above = sum(
            run_tasks(
                c,
                classify_block,
                [(w, npz) for w, npz, _ in items],
                args=(sc, pair, t, classes.nodata),
                describe=named,
            )
        )
        c.submit(
            write_class_cog,
            str(out),
            items,
            classes,
            (info.height, info.width, info.crs, info.transform),
            {**tags("otsu", index=index, threshold=f"{t:.6g}"), **scene_tags(sc.paths)},
            str(stage),
            pure=False,
        ).result()
    seconds = time.perf_counter() - t0
    report = {
        "geoseg": {"version": __version__, "created": datetime.now(UTC).isoformat()},
        "method": "otsu",
        "scene": list(sc.paths),
        "index": index,
        "formula": f"({a_role} - {b_role}) / ({a_role} + {b_role})",
        "bands": {a_role: pair[0], b_role: pair[1]},
        "threshold": t,
        "otsu_threshold": otsu,
        "threshold_given": threshold is not None,
        "classes": [{"id": k.id, "name": k.name, "color": k.color} for k in classes.classes],
        "valid_pixels": int(counts.sum()),
        "target_pixels": int(above),
        "target_fraction": float(above / counts.sum()),
        "seconds": {"total": round(seconds, 3)},
    }
    return finish(report, rpath, [out], seconds)


def _otsu(counts: np.ndarray, centres: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    used = np.flatnonzero(counts)
    if len(used) < 2:  # one value: nothing to separate
        return float(centres[used[0]])
    lo, hi = used[0], used[-1] + 1
    return float(threshold_otsu(hist=(counts[lo:hi], centres[lo:hi])))


def _index(scene: Scene, pair: list[int], w: Window) -> tuple[np.ndarray, np.ndarray]:
    x, valid = scene.read(w, pair)
    return np.clip(normalised_difference(x, 0, 1), -1, 1), valid


def index_histogram(scene: Scene, pair: list[int], w: Window) -> np.ndarray:
    """One Dask task: counts of the index of block ``w``'s valid pixels in BINS bins."""
    v, valid = _index(scene, pair, w)
    return np.histogram(v[valid], bins=BINS, range=(-1, 1))[0].astype(np.int64)


def classify_block(
    scene: Scene, pair: list[int], t: float, nodata: int, w: Window, path: str
) -> int:
    """One Dask task: stage block ``w`` of the two-class map; returns its target pixels."""
    v, valid = _index(scene, pair, w)
    out = np.full(v.shape, nodata, dtype=np.uint8)
    out[valid] = np.where(v[valid] > t, TARGET, OTHER)
    save_npz(path, cls=out)
    return int((out == TARGET).sum())

"""``geoseg sample``: a stratified random sample of a class map for accuracy assessment.

The map classes are the strata (Olofsson et al. 2014). Pixels per class are counted block by
block on Dask; the sample size is given, or follows from a target standard error of overall
accuracy (their eq. 13); rare classes get a minimum and the rest is allocated in proportion to
area. Within each class, pixels are drawn uniformly without replacement: a rank among the
class's pixels (in block order) is drawn on the client, and the task of the block holding it
finds the pixel. The points (pixel centres, map CRS) go to a GeoPackage (1.3) with an empty
``ref_class`` field for the analyst, the stratum of each point (``map_class``) and its size in
pixels (``stratum_px``); a ``geoseg_strata`` table holds the whole design. Same map, block
size and seed: same sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed import Client

from geoseg.accuracy.reference import STRATA_LAYER
from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core import metrics as mx
from geoseg.core.grid import Window
from geoseg.errors import GeoSegError
from geoseg.io.classmap import ClassMap
from geoseg.io.cog import check_output
from geoseg.io.files import atomic_path
from geoseg.io.style import vector_qml
from geoseg.io.vector import add_layer_style

POINTS_LAYER = "points"


@dataclass
class SampleResult:
    path: str
    n: int
    allocation: dict[int, int]  # class id -> points
    stratum_pixels: dict[int, int]  # class id -> mapped pixels
    seconds: float


def sample(
    map_path: str | Path,
    out: str | Path,
    *,
    n: int | None = None,
    min_per_class: int = 50,
    seed: int = 0,
    expected_ua: float = 0.8,
    target_se: float = 0.01,
    classes=None,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    block: int = 2048,
    overwrite: bool = False,
) -> SampleResult:
    """Draw a stratified random sample of ``map_path`` into the GeoPackage ``out``.

    ``n``: total points; by default Olofsson's eq. 13 with every class's expected user's
    accuracy ``expected_ua`` and the target standard error ``target_se`` of overall accuracy,
    raised where needed to give each mapped class ``min_per_class`` points."""
    cmap = ClassMap.open(map_path, classes)
    out = check_output(out, overwrite)
    if out.suffix.lower() != ".gpkg":
        raise GeoSegError(f"{out}: the sample is written as a GeoPackage, name it *.gpkg")
    if n is not None and n < 1:
        raise GeoSegError(f"--n must be a positive number of points, got {n}")
    windows = cmap.windows(block)
    named = name_windows(windows)
    t0 = time.perf_counter()
    with connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c:
        counts = run_tasks(c, cmap.class_counts, [(w,) for w in windows], describe=named)
        per_block = np.stack([r[0] for r in counts])
        pixels = per_block.sum(axis=0)
        if not pixels.any():
            raise GeoSegError(
                f"{map_path} has no pixel of any class in {cmap.ids}: nothing to sample"
            )
        alloc = _allocation(pixels, n, min_per_class, expected_ua, target_se)
        requests = _ranks(per_block, alloc, np.random.default_rng(seed))
        asked = sorted(requests.items())
        picked = run_tasks(
            c,
            pick,
            [(windows[b], req) for b, req in asked],
            args=(cmap,),
            describe=lambda i: named(asked[i][0]),
        )
    rows, cols, cls = (np.concatenate([p[k] for p in picked]) for k in range(3))
    order = np.random.default_rng([seed, 1]).permutation(len(rows))  # interleave classes
    _write(out, cmap, rows[order], cols[order], cls[order], pixels, alloc, seed)
    ids = cmap.ids
    return SampleResult(
        str(out),
        int(alloc.sum()),
        {ids[i]: int(a) for i, a in enumerate(alloc)},
        {ids[i]: int(p) for i, p in enumerate(pixels)},
        time.perf_counter() - t0,
    )


def _allocation(
    pixels: np.ndarray, n: int | None, min_per_class: int, expected_ua: float, target_se: float
) -> np.ndarray:
    try:
        if n is None:
            n = mx.sample_size(pixels, expected_ua, target_se)
            n = max(n, int(np.minimum(pixels, min_per_class).sum()))
        return mx.allocate(n, pixels, min_per_class)
    except ValueError as e:
        raise GeoSegError(
            f"cannot allocate the sample: {e} (change --n or --min-per-class)"
        ) from None


def _ranks(per_block: np.ndarray, alloc: np.ndarray, rng) -> dict[int, dict[int, np.ndarray]]:
    """{block: {class index: ranks of the drawn pixels among that class's pixels there}}."""
    requests: dict[int, dict[int, np.ndarray]] = {}
    for h, k in enumerate(alloc):
        if k == 0:
            continue
        starts = np.concatenate([[0], np.cumsum(per_block[:, h])])
        ranks = np.sort(rng.choice(int(starts[-1]), size=int(k), replace=False))
        blocks = np.searchsorted(starts, ranks, side="right") - 1
        for b in np.unique(blocks):
            requests.setdefault(int(b), {})[h] = ranks[blocks == b] - starts[b]
    return requests


def pick(cmap: ClassMap, window: Window, request: dict[int, np.ndarray]):
    """One Dask task: rows, cols and class indices of the requested pixels of ``window``."""
    idx, _ = cmap.read_index(window)
    flat = idx.ravel()
    rows, cols, cls = [], [], []
    for h, ranks in request.items():
        pos = np.flatnonzero(flat == h)[ranks]
        rows.append(window.row + pos // window.width)
        cols.append(window.col + pos % window.width)
        cls.append(np.full(len(pos), h, dtype=np.int16))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(cls)


def _write(out: Path, cmap: ClassMap, rows, cols, cls, pixels, alloc, seed: int) -> None:
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    import shapely

    xs, ys = cmap.transform * (cols + 0.5, rows + 0.5)
    ids = np.array(cmap.ids)
    names = np.array(cmap.names, dtype=object)
    gdf = gpd.GeoDataFrame(
        {
            "point_id": np.arange(1, len(rows) + 1, dtype=np.int32),
            "map_class": ids[cls].astype(np.int32),
            "map_name": names[cls],
            "ref_class": pd.array([None] * len(rows), dtype="Int32"),
            "stratum_px": pixels[cls].astype(np.int64),
        },
        geometry=shapely.points(xs, ys),
        crs=cmap.crs,
    )
    area = cmap.pixel_area_ha()
    strata = pd.DataFrame(
        {
            "map_class": ids.astype(np.int32),
            "map_name": names,
            "pixels": pixels.astype(np.int64),
            "weight": pixels / pixels.sum(),
            "sample_size": alloc.astype(np.int32),
            "area_ha": pixels * area if area is not None else np.full(len(ids), np.nan),
        }
    )
    meta = {
        "geoseg_map": str(Path(cmap.path).resolve()),
        "geoseg_seed": str(seed),
        "geoseg_design": "stratified random sample, strata = map classes",
    }
    with atomic_path(out, suffix=".gpkg") as tmp:
        pyogrio.write_dataframe(
            gdf,
            tmp,
            layer=POINTS_LAYER,
            driver="GPKG",
            dataset_options={"VERSION": "1.3"},
            layer_metadata=meta,
        )
        pyogrio.write_dataframe(strata, tmp, layer=STRATA_LAYER, driver="GPKG")
        # the points styled by their map class, as QGIS reads it from the GeoPackage
        add_layer_style(
            tmp, POINTS_LAYER, vector_qml(cmap.classes, field="map_class", geometry="point")
        )

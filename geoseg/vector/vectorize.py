"""``geoseg vectorize``: a class raster in, a GIS polygon layer out, polygonized on Dask.

One task per block polygonizes its window (:mod:`geoseg.vector.polygonize`). The client then
joins only the pieces that touch internal block edges (:mod:`geoseg.vector.seams`), which gives
exactly the polygons of a whole-raster polygonization; optionally applies a minimum mapping unit
(:mod:`geoseg.vector.sieve`) and a simplification that keeps the polygons a coverage (shared
edges stay shared: ``shapely.coverage_simplify``); adds attributes and writes the layer with its
QGIS style (:mod:`geoseg.io.vector`).
"""

from __future__ import annotations

import json
import logging
import uuid
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import rasterio
import shapely
from distributed import Client

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.cluster.tasks import name_windows, run_tasks
from geoseg.core.classes import ClassList, load_classes
from geoseg.errors import GeoSegError
from geoseg.io.dates import acquisition_date, check_date, date_from_tags, parse_date
from geoseg.io.remote import is_remote, local_staging
from geoseg.io.scene import open_raster
from geoseg.io.style import vector_qml
from geoseg.io.vector import (
    GEOM,
    check_vector_output,
    constant_column,
    date_column,
    id_column,
    vector_format,
    write_polygons,
)
from geoseg.vector.options import VectorizeOptions
from geoseg.vector.polygonize import BlockResult, PieceSet, VectorJob, polygonize_block, wkb_array
from geoseg.vector.polygons import as_multi, geod_for, measure, to_world
from geoseg.vector.seams import merge_seams
from geoseg.vector.sieve import sieve

log = logging.getLogger(__name__)


def vectorize(
    raster: str | Path,
    out: str | Path,
    options: VectorizeOptions | None = None,
    *,
    fmt: str | None = None,
    probabilities: str | Path | bool | None = None,
    client: Client | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    attrs: dict[str, str] | None = None,
    overwrite: bool = False,
    mmu_ha: float | None = None,
    **changes,
) -> Path | str:
    """Polygonize the class raster ``raster`` into the layer ``out`` and return its path
    (``out`` may be an ``s3://`` or ``/vsis3/`` URL: the layer is written locally, then
    uploaded, see :mod:`geoseg.io.remote`).

    ``fmt``: gpkg (default), shp, parquet, fgb or geojson (else from the suffix). ``options``
    and ``changes``: :class:`~geoseg.vector.options.VectorizeOptions` (``mmu``: minimum
    mapping unit in hectares, smaller regions join their neighbours, ``mmu_ha`` its former
    name; ``simplify``: tolerance in metres of a coverage-preserving simplification;
    ``connectivity``; ``block``). ``probabilities``: the
    confidence raster for a mean ``confidence`` attribute (default: ``<stem>_confidence.tif``
    beside the raster, if present; False: none). ``attrs`` overrides the ``source``, ``date``,
    ``model`` and ``model_ver`` attributes (read from the raster's GEOSEG_* tags) and adds
    constant attributes. Runs on ``client``, else on a cluster from ``workers``/``scheduler``.
    """
    if mmu_ha is not None:
        changes["mmu"] = mmu_ha
    o = VectorizeOptions.of(options, **changes)
    mmu_ha, simplify, connectivity, block = o.mmu, o.simplify, o.connectivity, o.block
    vector_format(out, fmt)  # a suffix geoseg cannot write fails before anything is fetched
    if is_remote(out):  # written locally, then uploaded (geoseg.io.remote)
        with local_staging(str(out), overwrite) as st:
            vectorize(
                raster,
                st.local,
                o,
                fmt=fmt,
                probabilities=probabilities,
                client=client,
                workers=workers,
                scheduler=scheduler,
                attrs=attrs,
                overwrite=True,
            )
        return st.url(st.local)
    vfmt = vector_format(out, fmt)
    out = check_vector_output(out, vfmt, overwrite)
    src = _open(raster)
    metres, geo_wkt = _units(src, raster, mmu_ha, simplify)
    conf = _confidence(raster, src, probabilities)
    job = VectorJob(
        raster=str(Path(raster).resolve()),
        height=src.height,
        width=src.width,
        block=block,
        nodata=src.nodata,
        transform=tuple(src.transform)[:6],
        connectivity=connectivity,
        finish_interior=not (mmu_ha or simplify),
        metres_per_unit=metres,
        geographic_crs=geo_wkt,
        confidence=conf[0] if conf else None,
        confidence_nodata=conf[1] if conf else None,
    )
    meta = _metadata(raster, src.tags, attrs or {})
    crs_wkt = src.crs.to_wkt() if src.crs else None
    src.close()

    with connect(ClusterOptions(workers=workers, scheduler=scheduler), client) as c:
        results = _run_blocks(c, job)
    done = _concat([r.done for r in results])
    blocks = np.concatenate([np.full(len(r.open), i) for i, r in enumerate(results)] or [[]])
    geoms, cls, sums = _finish(job, _concat([r.open for r in results]), blocks, mmu_ha, simplify)
    world = to_world(geoms, job.affine)
    if simplify:
        # the coverage's outer boundary (scene edge, nodata) stays exact: no cut corners
        world = shapely.coverage_simplify(
            world, simplify / (metres or 1.0), simplify_boundary=False
        )
    done_wkb = done.wkb
    multi = connectivity == 8 or bool((shapely.get_type_id(world) != 3).any())
    if multi:
        world = as_multi(world)
        if connectivity == 4 and len(done_wkb):  # rare: promote the finished pieces too
            done_wkb = wkb_array(as_multi(shapely.from_wkb(_np(done_wkb))))
    area, perim = measure(world, metres, geod_for(geo_wkt))
    all_cls = np.concatenate([done.cls, cls])
    classes = _classes(src.tags, all_cls)
    conf_cols = None
    if conf:
        conf_cols = (
            np.concatenate([done.conf_sum, sums[0]]),
            np.concatenate([done.conf_n, sums[1]]),
            conf[2],
        )
    table = _table(
        pa.concat_arrays([done_wkb, wkb_array(world)]),
        all_cls,
        np.concatenate([done.area_ha, area]),
        np.concatenate([done.perim_m, perim]),
        conf_cols,
        classes,
        meta,
    )
    return write_polygons(
        out,
        table,
        fmt=vfmt,
        crs_wkt=crs_wkt,
        geometry_type="MultiPolygon" if multi else "Polygon",
        qml=vector_qml(classes),
    )


def _run_blocks(c: Client, job: VectorJob) -> list[BlockResult]:
    token = uuid.uuid4().hex[:12]
    wins = job.windows()
    results = run_tasks(
        c,
        polygonize_block,
        [(w,) for w in wins],
        args=(job,),
        keys=[f"geoseg-vectorize-{token}-{i}" for i in range(len(wins))],
        describe=name_windows(wins),
    )
    secs = [r.seconds for r in results if r]
    log.info("polygonized %d blocks (%.2f-%.2f s each)", len(secs), min(secs), max(secs))
    return [r for r in results if r is not None]


def _concat(sets: list[PieceSet]) -> PieceSet:
    def cat(name):
        parts = [getattr(s, name) for s in sets if getattr(s, name) is not None]
        return np.concatenate(parts) if parts else None

    wkb = pa.concat_arrays([s.wkb for s in sets]) if sets else pa.array([], pa.large_binary())
    return PieceSet(
        wkb, *(cat(k) for k in ("cls", "conf_sum", "conf_n", "edge", "area_ha", "perim_m"))
    )


def _np(wkb: pa.Array) -> np.ndarray:
    return wkb.to_numpy(zero_copy_only=False)


def _finish(
    job: VectorJob, opened: PieceSet, blocks: np.ndarray, mmu_ha: float, simplify: float
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Merge the open pieces across seams, then the MMU sieve and the noding that coverage
    simplification needs; all in pixel coordinates."""
    if not len(opened):
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64), [np.zeros(0)] * 2
    geoms = shapely.from_wkb(_np(opened.wkb))
    sums = [opened.conf_sum, opened.conf_n]
    geoms, cls, sums = merge_seams(geoms, opened.cls, blocks, opened.edge, sums, job.connectivity)
    if mmu_ha:
        px_m2 = abs(job.affine.determinant) * (job.metres_per_unit or 1.0) ** 2
        geoms, cls, sums, st = sieve(geoms, cls, sums, mmu_ha * 1e4 / px_m2, job.connectivity)
        log.info("MMU sieve: %s", st)
        if st["dropped"]:
            warnings.warn(
                f"--mmu: dropped {st['dropped']} polygon(s) below the minimum "
                "mapping unit with no neighbour to join (islands in nodata), "
                f"{st['dropped_area'] * px_m2 / 1e4:.4g} ha",
                stacklevel=3,
            )
    if simplify:
        # vertices at every pixel corner along every edge: neighbours then have matching
        # vertices (a valid coverage), which coverage simplification requires
        geoms = shapely.segmentize(geoms, 1.0)
    return geoms, cls, sums


def _table(wkb, cls, area, perim, conf, classes: ClassList, meta: dict) -> pa.Table:
    n = len(cls)
    names = {c.id: c.name for c in classes.classes}
    uniq, inv = np.unique(cls, return_inverse=True)
    lut = pa.array([names.get(int(u), f"class {int(u)}") for u in uniq], pa.string())
    cols = {
        "poly_id": id_column(n),
        "class_id": pa.array(cls.astype(np.int32)),
        "class_name": lut.take(pa.array(inv.astype(np.int32))) if n else pa.array([], pa.string()),
        "area_ha": pa.array(area.astype(np.float64)),
        "perim_m": pa.array(perim.astype(np.float64)),
    }
    if conf is not None:
        s, k, scale = conf
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(k > 0, s / np.maximum(k, 1) * scale, np.nan)
        cols["confidence"] = pa.array(np.round(mean, 4), from_pandas=True)
    for key, value in meta.items():
        cols[key] = (date_column if key == "date" else constant_column)(value, n)
    cols[GEOM] = wkb
    return pa.table(cols)


class _Source:
    def __init__(self, ds):
        self.ds = ds
        self.height, self.width = ds.height, ds.width
        self.nodata, self.crs, self.transform = ds.nodata, ds.crs, ds.transform
        self.tags = {**ds.tags(), **{f"band1:{k}": v for k, v in ds.tags(1).items()}}

    def close(self) -> None:
        self.ds.close()


def _open(raster: str | Path) -> _Source:
    ds = open_raster(raster, warn_no_crs=False)  # no georeferencing: _units says what it means
    if ds.count < 1 or np.dtype(ds.dtypes[0]).kind not in "ui":
        ds.close()
        raise GeoSegError(
            f"{raster} is not a class raster (band 1 must hold integer class "
            f"ids, found {ds.dtypes[0] if ds.count else 'no band'})"
        )
    return _Source(ds)


def _units(
    src: _Source,
    raster,
    mmu_ha: float,
    simplify: float,
) -> tuple[float | None, str | None]:
    """(metres per CRS unit, WKT when areas must be measured on the ellipsoid)."""
    if src.crs is None:
        warnings.warn(
            f"{raster} has no CRS: areas, --mmu and --simplify are in its pixel "
            "units, taken as metres",
            stacklevel=3,
        )
        return 1.0, None
    if src.crs.is_geographic:
        if mmu_ha or simplify:
            raise GeoSegError(
                f"{raster} is in a geographic CRS ({src.crs.to_string()}): "
                "--mmu and --simplify need a projected CRS in metres; reproject "
                "the class raster first (gdalwarp -t_srs EPSG:...)"
            )
        return None, src.crs.to_wkt()
    try:
        return float(src.crs.linear_units_factor[1]), None
    except rasterio.errors.CRSError:
        raise GeoSegError(
            f"cannot tell the units of {raster}'s CRS to compute areas: "
            "reproject it to a projected CRS in metres"
        ) from None


def _confidence(raster, src: _Source, probabilities) -> tuple[str, float | None, float] | None:
    """(path, nodata, scale) of the confidence raster, or None."""
    if probabilities is False:
        return None
    p = Path(raster)
    path = (
        Path(probabilities)
        if probabilities not in (None, True)
        else p.with_name(f"{p.stem}_confidence.tif")
    )
    if not path.exists():
        if probabilities not in (None, True):
            raise GeoSegError(f"confidence raster {path} does not exist")
        return None
    with rasterio.open(path) as ds:
        if (ds.height, ds.width) != (src.height, src.width) or ds.transform != src.transform:
            raise GeoSegError(
                f"{path} is not on the grid of {raster} ({ds.width}x{ds.height} "
                f"vs {src.width}x{src.height}): pass the matching confidence "
                "raster"
            )
        scale = ds.scales[0] if ds.scales else 1.0
        if scale == 1.0 and ds.dtypes[0] == "uint8":
            scale = 1 / 254  # geoseg's confidence COG: 0..254, 255 = nodata
        return str(path.resolve()), ds.nodata, scale


def _metadata(raster, tags: dict[str, str], attrs: dict[str, str]) -> dict[str, str | None]:
    model = tags.get("GEOSEG_MODEL", "")
    name, _, version = model.rpartition(" ") if " " in model else (model, "", "")
    sources = [Path(s).name for s in tags.get("GEOSEG_SOURCE", "").split(",") if s]
    # the map's acquisition date (predict tags it from the scene), else its sources' or its
    # name's; empty when unknown (never the file's modification time)
    date = date_from_tags(tags, last_resort=False) or parse_date(Path(str(raster)).name)
    if not date and sources:
        paths = [p for p in tags["GEOSEG_SOURCE"].split(",") if Path(p).exists()]
        date = acquisition_date(paths) if paths else None
    meta: dict[str, str | None] = {
        "source": ",".join(sources) or None,
        "date": date,
        "model": name or None,
        "model_ver": version or None,
    }
    for k, v in attrs.items():
        meta[str(k)] = None if v is None else str(v)
    if meta.get("date"):  # a date column in every format (io.vector.date_column)
        meta["date"] = check_date(meta["date"])
    return meta


def _classes(tags: dict[str, str], present: np.ndarray) -> ClassList:
    """The raster's class list (band tag CLASSES), else one named after each id present."""
    raw = tags.get("band1:CLASSES")
    if raw:
        try:
            return load_classes(json.loads(raw))
        except (GeoSegError, ValueError):
            log.warning("ignoring an invalid CLASSES tag")
    ids = [int(i) for i in np.unique(present) if 0 <= int(i) <= 254] or [1]
    return ClassList(classes=[{"id": i, "name": f"class {i}"} for i in ids])

"""``geoseg predict``: a scene and a model bundle in, a class COG out, on a Dask cluster.

The client plans the job from metadata alone (scene size, bundle JSON), submits one task per
output block, follows them with a progress bar, and submits the assembly as one more task: it
never reads a pixel, and the graph is O(blocks).
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from distributed import Client
from rasterio.enums import MaskFlags

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.core.radiometry import BandMapping
from geoseg.engine.blocks import assemble, cancel_flag, remove_staging, strip_windows
from geoseg.engine.compat import mismatches
from geoseg.engine.job import (
    PredictJob,
    default_staging_root,
    job_key,
    make_job,
    write_manifest,
)
from geoseg.engine.options import PredictOptions
from geoseg.engine.radiometry import check_normalize, radiometry_for
from geoseg.engine.supervise import run_blocks, stop_assembly
from geoseg.engine.zarr_output import write_zarr
from geoseg.errors import GeoSegError, Interrupted, Resumable
from geoseg.io.cog import check_output, check_raster_suffix
from geoseg.io.dates import acquisition_date, check_date
from geoseg.io.files import check_not_an_input, output_lock
from geoseg.io.remote import default_staging_root as remote_staging_root
from geoseg.io.remote import is_remote, local_staging
from geoseg.io.scene import Scene, open_raster
from geoseg.io.stac import is_item as stac_item
from geoseg.io.stac import item_path, scene_from_item
from geoseg.io.style import check_style_free
from geoseg.io.zarr import is_zarr
from geoseg.model.bundle import BundleMeta, read_meta
from geoseg.model.runtime import Choice, choose, probe

log = logging.getLogger(__name__)


@dataclass
class PredictResult:
    outputs: dict[str, str]
    megapixels: float
    blocks: int
    blocks_reused: int
    tiles: int
    tiles_skipped: int
    seconds: float
    assembly_seconds: float
    staging: str
    dashboard: str | None = None
    block_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: dict[int, float] = field(default_factory=dict)  # per worker process
    normalize: str = "bundle"  # the band radiometry used (GEOSEG_NORMALIZE)
    normalize_reason: str = ""  # why (--normalize auto decides; GEOSEG_NORMALIZE_REASON)
    radiometry: dict | None = None  # its per-band figures (BandMapping.describe)
    runtime: str = ""  # what the model ran in, e.g. "openvino/bf16" (GEOSEG_RUNTIME)
    runtime_reason: str = ""  # why (model.runtime.choose)

    @property
    def mpx_per_s(self) -> float:
        return self.megapixels / self.seconds if self.seconds else 0.0

    @property
    def path(self) -> str:
        return self.outputs["classes"]

    def figures(self, scene=None) -> dict:
        """The prediction's figures as the report's map section reads them (``scene``: the
        scene's path, for the interactive map's background, or None)."""
        return {
            "path": self.path,
            "scene": str(scene) if isinstance(scene, str | Path) else None,
            "outputs": self.outputs,
            "megapixels": self.megapixels,
            "seconds": round(self.seconds, 3),
            "mpx_per_s": round(self.mpx_per_s, 3),
            "tiles": self.tiles,
            "tiles_skipped": self.tiles_skipped,
            "blocks": self.blocks,
            "blocks_reused": self.blocks_reused,
            "peak_worker_rss_mb": max(self.peak_rss_mb.values(), default=None),
            "normalize": self.normalize,
            **({"normalize_reason": self.normalize_reason} if self.normalize_reason else {}),
            "radiometry": self.radiometry,
            "runtime": self.runtime,
            "runtime_reason": self.runtime_reason,
        }


def plan(
    scene,
    model: str,
    out: str | Path,
    options: PredictOptions | None = None,
    *,
    staging: str | None = None,
    radiometry: BandMapping | None = None,
    overwrite: bool = False,
    **changes,
) -> tuple[PredictJob, str, BundleMeta]:
    """Validate everything that can be checked before work starts, and describe the job
    (``options`` with ``changes``, e.g. ``block=1024``)."""
    opts = PredictOptions.of(options, **changes)
    scene = Scene.of(scene)
    meta = read_meta(model)
    check_normalize(opts.normalize, meta, model)
    info = scene.info
    scene.check_bands(meta.bands)
    check_scene(meta, info, model, opts.strict)
    check_raster_suffix(out)
    check_not_an_input(out, scene.paths)
    out_path = check_output(out, overwrite)
    if not is_zarr(out_path):
        check_style_free(out_path, "raster")
    job = make_job(scene, info.height, info.width, model, meta, opts, radiometry=radiometry)
    key = job_key(scene, meta.weights_sha256, job.key_params(meta.bands))
    root = Path(staging) if staging else default_staging_root(out_path)
    return replace(job, staging=str(root / key)), key, meta


def check_scene(meta: BundleMeta, info, model: str, strict: bool) -> None:
    """Warn in one line (refuse with ``strict``) where the scene is unlike the training
    scenes (:mod:`geoseg.engine.compat`)."""
    found = mismatches(meta, info)
    if not found:
        return
    what = f"the scene is unlike what {Path(model).name} was trained on: {'; '.join(found)}"
    if strict:
        raise GeoSegError(f"{what}: use a model trained on such scenes, or drop --strict")
    warnings.warn(f"{what}; the map may be wrong (--strict refuses such scenes)", stacklevel=3)


def predict(
    scene,
    model: str,
    out: str | Path,
    options: PredictOptions | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    gpus: bool = False,
    client: Client | None = None,
    staging: str | None = None,
    keep_staging: bool = False,
    overwrite: bool = False,
    amp: str | None = None,
    radiometry: BandMapping | None = None,
    progress: bool = False,
    assets: list[str] | None = None,
    date: str | None = None,
    space_check: bool = True,
    **changes,
) -> PredictResult:
    """Predict ``scene`` (a path, band files to stack, or a STAC Item JSON whose ``assets``
    are stacked in the order given) with the bundle ``model`` into the class COG (or Zarr
    store, ``.zarr``) ``out``. ``date``: the acquisition date to record (default: the Item's,
    else from the scene's metadata or name). Runs on ``client`` if given, else on a cluster
    made from ``workers`` / ``scheduler`` / ``gpus`` (default: a local cluster sized to this
    machine).

    ``options`` (a :class:`~geoseg.engine.options.PredictOptions`) and ``changes`` (its
    fields as keywords, e.g. ``tile=512, tta="flips"``) say how: tiling, probabilities, batch
    size, threads, test-time augmentation, ``precision`` and ``runtime`` (decided once for
    the whole job from what every worker reports, :mod:`geoseg.model.runtime`) and
    ``normalize``: ``auto`` (``bundle`` where the scene's band quantiles are near the
    training ones, else ``scene``; the choice and why are in the result and the COG tags),
    ``bundle``, ``scene`` or ``match`` (:mod:`geoseg.core.radiometry`). ``radiometry``: an
    explicit band mapping instead (e.g. two dates' pseudo-invariant fit). ``amp`` is the
    former name of ``precision`` ("none" = fp32). ``space_check=False`` (``--no-space-check``)
    starts the job even where the staging or output folder looks short of free space."""
    if amp is not None and changes.get("precision", "auto") == "auto":
        changes["precision"] = {"none": "fp32"}.get(amp, amp)
    if changes.get("device") is None:  # None: the former "unset"
        changes.pop("device", None)
    opts = PredictOptions.of(options, **changes)
    if gpus and opts.device == "auto":
        opts = PredictOptions.of(opts, device="cuda")
    if stac_item(scene):
        scene, item_date = scene_from_item(scene, assets)
        date = date or item_date
    elif assets:
        raise GeoSegError("--assets names assets of a STAC Item: pass the Item's JSON as the scene")
    if is_remote(out):  # written locally, then uploaded (geoseg.io.remote)
        with local_staging(str(out), overwrite, where=staging) as st:
            res = predict(
                scene,
                model,
                st.local,
                opts,
                workers=workers,
                scheduler=scheduler,
                gpus=gpus,
                client=client,
                staging=staging or str(remote_staging_root()),
                keep_staging=keep_staging,
                overwrite=True,
                radiometry=radiometry,
                progress=progress,
                date=date,
                space_check=space_check,
            )
        res.outputs = {k: st.url(v) for k, v in res.outputs.items()}
        return res
    job, key, meta = plan(
        scene, model, out, opts, staging=staging, radiometry=radiometry, overwrite=overwrite
    )
    with output_lock(Path(out).resolve()):  # one job per output
        if space_check:
            check_space(job, meta, Path(out).resolve())
        if progress:
            _say_size(job, meta)
        where = ClusterOptions(workers=workers, scheduler=scheduler, gpus=gpus)
        t0 = time.perf_counter()
        with connect(where, client) as c:
            if not c.scheduler_info(n_workers=-1)["workers"]:
                raise GeoSegError(
                    "the Dask cluster has no workers: start some with 'dask worker "
                    "ADDRESS' or use the local cluster"
                )
            choice = _choose(c, opts.device, opts.precision, opts.runtime)
            ran = PredictOptions.of(
                opts, device=choice.device, precision=choice.precision, runtime=choice.runtime
            )
            mode = check_normalize(opts.normalize, meta, model)
            reason = "a radiometric mapping was given" if radiometry is not None else ""
            if radiometry is None:
                radiometry, mode, reason = radiometry_for(c, job.scene, meta, mode)
            job, key, meta = plan(
                scene, model, out, ran, staging=staging, radiometry=radiometry, overwrite=overwrite
            )
            write_manifest(job, key)
            dashboard = c.dashboard_link if c.cluster is not None or scheduler else None
            if progress and dashboard:
                from rich.console import Console

                Console(stderr=True).print(f"Dask dashboard: {dashboard}")
            try:
                stats = run_blocks(c, job, key, progress)
                _check_valid_pixels(job, stats)
                tags = _tags(job, meta, mode, _ran_in(stats, choice), date)
                if opts.normalize == "auto":  # what auto chose, and why
                    tags["GEOSEG_NORMALIZE_REASON"] = reason
            except Resumable:  # interrupted, or one block crashed its workers: keep the rest
                raise
            except GeoSegError:  # the scene or the model is at fault: nothing worth resuming
                remove_staging(job.staging)
                raise
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise GeoSegError(
                        f"no space left on the device of the staging folder "
                        f"{job.staging}: free some space and re-run (finished blocks "
                        "are reused), or pass --staging DIR on a larger disk"
                    ) from None
                raise
            t_asm = time.perf_counter()
            if is_zarr(out):  # one task per block writes its own chunks: no single writer
                outs = write_zarr(c, job, Path(out).resolve(), tags)
                t1 = time.perf_counter()
                return _result(
                    job, stats, outs, (t0, t_asm, t1), dashboard, tags, choice, keep_staging
                )
            heads = [h.name for h in job.extra_heads]
            finals = _final_files(Path(out).resolve(), opts.probabilities, heads)
            before = {p: _identity(p) for p in finals}
            flag = cancel_flag(job)
            flag.unlink(missing_ok=True)
            fut = c.submit(assemble, job, str(Path(out).resolve()), tags, pure=False)
            try:
                outs = fut.result()
            except BaseException as e:  # no partial set: what this assembly put in place goes
                if isinstance(e, KeyboardInterrupt):
                    stop_assembly(c, fut, flag)
                for p in finals:
                    if _identity(p) != before[p]:
                        p.unlink(missing_ok=True)
                if isinstance(e, KeyboardInterrupt):
                    raise Interrupted(
                        f"interrupted while assembling {Path(out).name}: all {len(stats)} blocks "
                        "stay staged and no output was written; run the same command again to "
                        "finish"
                    ) from None
                raise
            t1 = time.perf_counter()
        return _result(job, stats, outs, (t0, t_asm, t1), dashboard, tags, choice, keep_staging)


# the side of the scene's mask read to find the blocks with data: GDAL decimates a huge VRT
# pixel by pixel (1024 px a side took 17 s on a 10^6 px square grid, 256 about 1/16 of it)
COARSE = 256
MARKER_BYTES = 1024  # a block without one valid pixel stages a marker of about this size
EMPTY_RATIO = 256  # a product's nodata tiles compress at least this much (DEFLATE, ZSTD)


def _edges(blocks, axis: int) -> np.ndarray:
    """The first and last-plus-one pixel of each block row (axis 0) or column (axis 1)."""
    n = blocks.shape[axis]
    regs = [blocks.block(i, 0).region if axis == 0 else blocks.block(0, i).region for i in range(n)]
    if axis == 0:
        return np.array([(r.row, r.row_end) for r in regs])
    return np.array([(r.col, r.col_end) for r in regs])


def footprint(job: PredictJob) -> np.ndarray | None:
    """Per block of ``job.blocks`` (block rows x block columns), whether a coarse read of the
    scene's mask (at most :data:`COARSE` pixels a side, its first file's) shows data in it;
    None where the mask cannot be read. An estimate: the blocks' own reads decide what is
    staged."""
    import math

    try:
        with open_raster(job.scene.paths[0], warn_no_crs=False) as src:
            if all(MaskFlags.all_valid in m for m in src.mask_flag_enums):
                return None  # no nodata, no mask: every block has data
            f = max(1, math.ceil(max(src.height, src.width) / COARSE))
            shape = (math.ceil(src.height / f), math.ceil(src.width / f))
            mask = src.dataset_mask(out_shape=shape) > 0
    except Exception:  # noqa: BLE001 - an estimate: without it the bounds stay whole
        return None
    # pixels with data per block from a summed-area table of the coarse mask
    sat = np.zeros((shape[0] + 1, shape[1] + 1), dtype=np.int64)
    sat[1:, 1:] = mask.cumsum(0).cumsum(1)
    rows, cols = _edges(job.blocks, 0), _edges(job.blocks, 1)
    r0, r1 = rows[:, 0] // f, -(-rows[:, 1] // f)
    c0, c1 = cols[:, 0] // f, -(-cols[:, 1] // f)
    n = sat[np.ix_(r1, c1)] - sat[np.ix_(r0, c1)] - sat[np.ix_(r1, c0)] + sat[np.ix_(r0, c0)]
    return n > 0


def job_bytes(
    job: PredictJob, meta: BundleMeta, with_data: np.ndarray | None = None
) -> tuple[int, int]:
    """Upper bounds of the bytes a job stages (every block's classes, probabilities and the
    int32 sums of the strips it shares with its neighbours, uncompressed) and writes (the
    products uncompressed, overviews included). ``with_data`` (:func:`footprint`): blocks
    without data stage a marker and write nodata tiles that compress to little."""
    blocks = job.blocks
    nb = blocks.shape
    extra = meta.n_outputs - meta.n_classes  # other heads' values, one byte each
    per_px = 1 + extra + (meta.n_classes if job.options.probabilities else 0)
    inner = blocks.block(min(1, nb[0] - 1), min(1, nb[1] - 1))  # the most strips
    strips = sum(w.height * w.width for w in strip_windows(inner, blocks).values())
    out_px = 1 + extra + (meta.n_classes + 1 if job.options.probabilities else 0)
    total = job.height * job.width
    if with_data is None:
        pixels, full = total, nb[0] * nb[1]
    else:
        rows, cols = _edges(blocks, 0), _edges(blocks, 1)
        sizes = np.outer(rows[:, 1] - rows[:, 0], cols[:, 1] - cols[:, 0])
        pixels, full = int(sizes[with_data].sum()), int(with_data.sum())
    staged = pixels * per_px + full * strips * (meta.n_outputs + 1) * 4
    staged += (nb[0] * nb[1] - full) * MARKER_BYTES
    written = (pixels + (total - pixels) // EMPTY_RATIO) * out_px * 4 // 3
    return staged, written


def _free(folder: Path) -> tuple[int, int]:
    """(free bytes, device) of the volume ``folder`` is (or would be made) on."""
    p = folder
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free, p.stat().st_dev


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


LARGE_JOB_BYTES = 10**10  # a job that may stage and write more says so before it starts


def _bounds(job: PredictJob, meta: BundleMeta, over: int) -> tuple[int, int]:
    """:func:`job_bytes`, with the scene's :func:`footprint` where the whole grid's bounds
    reach ``over`` bytes (reading a coarse mask costs a decimated read of the scene)."""
    staged, written = job_bytes(job, meta)
    if staged + written >= over:
        return job_bytes(job, meta, footprint(job))
    return staged, written


def _say_size(job: PredictJob, meta: BundleMeta) -> None:
    staged, written = _bounds(job, meta, LARGE_JOB_BYTES)
    if staged + written >= LARGE_JOB_BYTES:
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(
            f"a large job: {job.height}x{job.width} pixels in {len(job.blocks)} blocks may "
            f"stage up to {_size(staged)} in {Path(job.staging).parent} and write up to "
            f"{_size(written)}",
            highlight=False,
        )


def check_space(job: PredictJob, meta: BundleMeta, out: Path) -> None:
    """Refuse, before any block runs, a job whose staging and output do not fit in the free
    space of their folders (:func:`job_bytes`, upper bounds, over the blocks with data)."""
    staging = Path(job.staging)
    (free_s, dev_s), (free_o, dev_o) = _free(staging), _free(out.parent)
    staged, written = _bounds(job, meta, min(free_s, free_o))
    same = dev_s == dev_o  # one volume: both must fit in it together
    if (staged + written > free_s) if same else (staged > free_s or written > free_o):
        where = (
            f"{_size(free_s)} in {staging.parent}"
            if same
            else f"{_size(free_s)} in {staging.parent} and {_size(free_o)} in {out.parent}"
        )
        raise GeoSegError(
            f"not enough free space for {out.name}: the job may stage up to {_size(staged)} "
            f"and write up to {_size(written)} ({job.height}x{job.width} pixels) but the free "
            f"space is {where}: free some space, pass --staging DIR on a larger disk, or "
            "--no-space-check to start anyway"
        )


def _result(job, stats, outs, times, dashboard, tags, choice, keep_staging) -> PredictResult:
    t0, t_asm, t1 = times
    if not keep_staging:
        remove_staging(job.staging)
    return PredictResult(
        outputs={
            k: v
            for k, v in outs.items()
            if k in ("classes", "probs", "conf", *(h.name for h in job.extra_heads))
        },
        megapixels=job.height * job.width / 1e6,
        blocks=len(stats),
        blocks_reused=sum(s["reused"] for s in stats),
        tiles=sum(s["tiles"] for s in stats),
        tiles_skipped=sum(s["tiles_skipped"] for s in stats),
        seconds=t1 - t0,
        assembly_seconds=t1 - t_asm,
        staging=job.staging,
        dashboard=dashboard,
        block_seconds=[s["seconds"] for s in stats],
        peak_rss_mb=_peaks(stats + [outs]),
        normalize=tags["GEOSEG_NORMALIZE"],
        normalize_reason=tags.get("GEOSEG_NORMALIZE_REASON", ""),
        radiometry=job.radiometry.describe() if job.radiometry else None,
        runtime=tags["GEOSEG_RUNTIME"],
        runtime_reason=choice.reason,
    )


def _choose(c: Client, device: str, precision: str, runtime: str) -> Choice:
    """One runtime and precision for the job, from what every worker reports."""
    probes = list(c.run(probe, device).values())
    choice = choose(precision, runtime, probes)
    log.info("model runtime %s (%s)", choice.tag, choice.reason)
    return choice


def _ran_in(stats: list[dict], choice: Choice) -> str:
    """What the blocks computed in this run ran in (all one), else the job's choice."""
    ran = {s["runtime"] for s in stats if s.get("runtime")}
    if len(ran) > 1:  # a worker could not honour the choice: the map would mix runtimes
        raise GeoSegError(
            f"the workers ran the model in different runtimes ({', '.join(sorted(ran))}): "
            "pass --runtime and --precision explicitly"
        )
    return ran.pop() if ran else choice.tag


def _tags(
    job: PredictJob, meta: BundleMeta, normalize: str, ran_in: str, date: str | None = None
) -> dict[str, str]:
    tags = {
        "GEOSEG_RUNTIME": ran_in,
        "GEOSEG_MODEL": f"{meta.name} {meta.version}",
        "GEOSEG_ARCH": f"{meta.architecture}/{meta.encoder}",
        "GEOSEG_TILE": str(job.tile),
        "GEOSEG_OVERLAP": str(job.overlap),
        **job.options.tags(),
        "GEOSEG_NORMALIZE": job.radiometry.mode if job.radiometry else normalize,
        "GEOSEG_SOURCE": ",".join(job.scene.paths),
    }
    # the given (or STAC Item's) date, else from the scene's metadata or name, else none
    when = check_date(date) if date else acquisition_date(job.scene.paths)
    if when:
        tags["GEOSEG_DATE"] = when
    if job.radiometry is not None:  # the band statistics used, per band
        tags["GEOSEG_RADIOMETRY"] = json.dumps(job.radiometry.describe())
    return tags


def _final_files(out: Path, probabilities: bool, heads: list[str]) -> list[Path]:
    """Every file the assembly puts in place (CogWriter.finish), sidecars included."""
    files = [out, Path(f"{out}.aux.xml"), out.with_suffix(".qml")]
    suffixes = ["_probabilities", "_confidence"] if probabilities else []
    files += [out.with_name(f"{out.stem}{s}{out.suffix}") for s in suffixes]
    files += [out.with_name(f"{out.stem}_{h}{out.suffix}") for h in heads]
    return files + [item_path(f) for f in files if f.suffix == out.suffix]


def _identity(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _check_valid_pixels(job: PredictJob, stats: list[dict]) -> None:
    """A scene without one valid pixel gives a useless map: most likely a wrong input."""
    if stats and not any(s["reused"] or s["tiles"] for s in stats):
        paths = job.scene.paths
        what = paths[0] if len(paths) == 1 else f"the {len(paths)} band files"
        raise GeoSegError(
            f"{what} has no valid pixel in the bands the model reads (all nodata, "
            "masked or NaN): check the scene and its nodata value"
        )


def _peaks(stats: list[dict]) -> dict[int, float]:
    out: dict[int, float] = {}
    for s in stats:
        if "pid" in s:
            out[s["pid"]] = max(out.get(s["pid"], 0.0), s["peak_rss_mb"])
    return out

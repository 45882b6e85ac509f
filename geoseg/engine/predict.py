"""``geoseg predict``: a scene and a model bundle in, a class COG out, on a Dask cluster.

The client plans the job from metadata alone (scene size, bundle JSON), submits one task per
output block, follows them with a progress bar, and submits the assembly as one more task: it
never reads a pixel, and the graph is O(blocks).
"""

from __future__ import annotations

import errno
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.core.grid import BlockGrid, TileGrid
from geoseg.core.radiometry import BandMapping
from geoseg.engine.blocks import assemble, cancel_flag, remove_staging
from geoseg.engine.job import PredictJob, default_staging_root, job_key, write_manifest
from geoseg.engine.radiometry import check_normalize, radiometry_for
from geoseg.engine.supervise import run_blocks, stop_assembly
from geoseg.engine.zarr_output import write_zarr
from geoseg.errors import GeoSegError, Interrupted, Resumable
from geoseg.io.cog import check_output
from geoseg.io.dates import acquisition_date, check_date
from geoseg.io.remote import default_staging_root as remote_staging_root
from geoseg.io.remote import is_remote, local_staging
from geoseg.io.scene import Scene
from geoseg.io.stac import is_item as stac_item
from geoseg.io.stac import item_path, scene_from_item
from geoseg.io.style import check_style_free
from geoseg.io.zarr import is_zarr
from geoseg.model.bundle import BundleMeta, read_meta
from geoseg.model.runtime import Choice, check_options, choose, probe
from geoseg.model.tta import check_tta

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


def plan(
    scene,
    model: str,
    out: str | Path,
    *,
    block: int = 2048,
    tile: int | None = None,
    overlap: int | None = None,
    probabilities: bool = False,
    staging: str | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    precision: str = "auto",
    runtime: str = "auto",
    torch_threads: int = 1,
    tta: str = "none",
    normalize: str = "auto",
    radiometry: BandMapping | None = None,
    overwrite: bool = False,
) -> tuple[PredictJob, str, BundleMeta]:
    """Validate everything that can be checked before work starts, and describe the job."""
    check_tta(tta)
    check_options(precision, runtime)
    scene = Scene.of(scene)
    meta = read_meta(model)
    check_normalize(normalize, meta, model)
    info = scene.info
    scene.check_bands(meta.bands)
    out_path = check_output(out, overwrite)
    if not is_zarr(out_path):
        check_style_free(out_path, "raster")
    tile = tile or meta.tile
    overlap = meta.overlap if overlap is None else overlap
    try:
        grid = TileGrid(info.height, info.width, tile, overlap)
        blocks = BlockGrid.from_block_size(grid, block)
    except ValueError as e:
        raise GeoSegError(f"invalid tiling: {e}") from None
    params = {
        "tile": tile,
        "overlap": overlap,
        "tiles_per_block": blocks.tiles_per_block,
        "probabilities": probabilities,
        "bands": meta.bands,
        "device": device,
        "batch_size": batch_size,
        "precision": precision,
        "runtime": runtime,
        "torch_threads": torch_threads,
    }
    if tta != "none":  # absent by default: staging made before TTA existed stays valid
        params["tta"] = tta
    if radiometry is not None:  # likewise
        params["radiometry"] = radiometry.to_json()
    key = job_key(scene, meta.weights_sha256, params)
    root = Path(staging) if staging else default_staging_root(out_path)
    job = PredictJob(
        scene=scene,
        bundle=str(Path(model).resolve()),
        height=info.height,
        width=info.width,
        tile=tile,
        overlap=overlap,
        tiles_per_block=blocks.tiles_per_block,
        staging=str(root / key),
        probabilities=probabilities,
        device=device,
        batch_size=batch_size,
        precision=precision,
        runtime=runtime,
        torch_threads=torch_threads,
        tta=tta,
        radiometry=radiometry,
    )
    return job, key, meta


def predict(
    scene,
    model: str,
    out: str | Path,
    *,
    block: int = 2048,
    tile: int | None = None,
    overlap: int | None = None,
    probabilities: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    gpus: bool = False,
    client: Client | None = None,
    staging: str | None = None,
    keep_staging: bool = False,
    overwrite: bool = False,
    batch_size: int | None = None,
    precision: str = "auto",
    runtime: str = "auto",
    amp: str | None = None,
    device: str | None = None,
    torch_threads: int = 1,
    tta: str = "none",
    normalize: str = "auto",
    radiometry: BandMapping | None = None,
    progress: bool = False,
    assets: list[str] | None = None,
    date: str | None = None,
) -> PredictResult:
    """Predict ``scene`` (a path, band files to stack, or a STAC Item JSON whose ``assets``
    are stacked in the order given) with the bundle ``model`` into the class COG (or Zarr
    store, ``.zarr``) ``out``. ``date``: the acquisition date to record (default: the Item's,
    else from the scene's metadata or name). Runs on ``client`` if given, else on a cluster
    made from ``workers`` / ``scheduler`` / ``gpus`` (default: a local cluster sized to this
    machine).

    ``normalize``: ``auto`` (``bundle`` where the scene's band quantiles are near the
    training ones, else ``scene``; the choice and why are in the result and the COG tags),
    ``bundle`` (the bundle's mean and std as they are), ``scene`` (the scene's
    robust band statistics moved onto the training ones) or ``match`` (band quantiles matched
    to the training quantiles), see :mod:`geoseg.core.radiometry`; ``radiometry``: an
    explicit mapping instead (e.g. two dates' pseudo-invariant fit).

    ``precision`` (auto, fp32, bf16, fp16) and ``runtime`` (auto, torch, openvino): what the
    model runs in, decided once for the whole job from what every worker reports
    (:mod:`geoseg.model.runtime`); ``amp`` is the former name of ``precision`` ("none" =
    fp32)."""
    if amp is not None and precision == "auto":
        precision = {"none": "fp32"}.get(amp, amp)
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
                block=block,
                tile=tile,
                overlap=overlap,
                probabilities=probabilities,
                workers=workers,
                scheduler=scheduler,
                gpus=gpus,
                client=client,
                staging=staging or str(remote_staging_root()),
                keep_staging=keep_staging,
                overwrite=True,
                batch_size=batch_size,
                precision=precision,
                runtime=runtime,
                device=device,
                torch_threads=torch_threads,
                tta=tta,
                normalize=normalize,
                radiometry=radiometry,
                progress=progress,
                date=date,
            )
        res.outputs = {k: st.url(v) for k, v in res.outputs.items()}
        return res
    device = device or ("cuda" if gpus else "auto")
    args = dict(
        block=block,
        tile=tile,
        overlap=overlap,
        probabilities=probabilities,
        staging=staging,
        device=device,
        batch_size=batch_size,
        precision=precision,
        runtime=runtime,
        torch_threads=torch_threads,
        tta=tta,
        normalize=normalize,
        overwrite=overwrite,
    )
    job, key, meta = plan(scene, model, out, radiometry=radiometry, **args)
    opts = ClusterOptions(workers=workers, scheduler=scheduler, gpus=gpus)
    t0 = time.perf_counter()
    with connect(opts, client) as c:
        if not c.scheduler_info(n_workers=-1)["workers"]:
            raise GeoSegError(
                "the Dask cluster has no workers: start some with 'dask worker "
                "ADDRESS' or use the local cluster"
            )
        choice = _choose(c, device, precision, runtime)
        args.update(device=choice.device, precision=choice.precision, runtime=choice.runtime)
        mode = check_normalize(normalize, meta, model)
        reason = "a radiometric mapping was given" if radiometry is not None else ""
        if radiometry is None:
            radiometry, mode, reason = radiometry_for(c, job.scene, meta, mode)
        job, key, meta = plan(scene, model, out, radiometry=radiometry, **args)
        write_manifest(job, key)
        dashboard = c.dashboard_link if c.cluster is not None or scheduler else None
        if progress and dashboard:
            from rich.console import Console

            Console(stderr=True).print(f"Dask dashboard: {dashboard}")
        try:
            stats = run_blocks(c, job, key, progress)
            _check_valid_pixels(job, stats)
            tags = _tags(job, meta, mode, _ran_in(stats, choice), date)
            if normalize == "auto":  # what auto chose, and why
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
            return _result(job, stats, outs, (t0, t_asm, t1), dashboard, tags, choice, keep_staging)
        finals = _final_files(Path(out).resolve(), probabilities)
        before = {p: _identity(p) for p in finals}
        flag = cancel_flag(job)
        flag.unlink(missing_ok=True)
        fut = c.submit(assemble, job, str(Path(out).resolve()), tags, pure=False)
        try:
            outs = fut.result()
        except BaseException as e:  # no partial set: files this assembly already put in place go
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


def _result(job, stats, outs, times, dashboard, tags, choice, keep_staging) -> PredictResult:
    t0, t_asm, t1 = times
    if not keep_staging:
        remove_staging(job.staging)
    return PredictResult(
        outputs={k: v for k, v in outs.items() if k in ("classes", "probs", "conf")},
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
        "GEOSEG_TTA": job.tta,
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


def _final_files(out: Path, probabilities: bool) -> list[Path]:
    """Every file the assembly puts in place (CogWriter.finish), sidecars included."""
    files = [out, Path(f"{out}.aux.xml"), out.with_suffix(".qml")]
    if probabilities:
        files += [
            out.with_name(f"{out.stem}{s}{out.suffix}") for s in ("_probabilities", "_confidence")
        ]
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

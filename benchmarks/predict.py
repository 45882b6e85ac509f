"""Engine benchmark: each runtime and precision, model alone and end to end; 1 vs 2 workers;
the engine's own cost; memory against scene size.

    python benchmarks/predict.py                      # everything below, ~20 min on 2 cores
    python benchmarks/predict.py --only runtimes      # or: throughput, memory, layout
    python benchmarks/predict.py --only gigapixel     # 17 Mpx, 268 Mpx and 1 Gpx (~15 min)
    python benchmarks/predict.py --only zarr          # COG assembly vs parallel Zarr writes
    python benchmarks/predict.py --only service       # the CLI cold and on `geoseg serve`

Runtimes: for every runtime/precision this machine has (torch fp32 = the default before issue
16, torch bf16, OpenVINO fp32 and bf16), the model alone in the engine's layout (one process
per core, one thread each, batch 1) and end to end on a warm cluster (workers started, model
loaded by a first small job), their ratio; a cold CLI run (`geoseg predict` with the defaults:
cluster start, model load, COG); and the engine alone (pixelnet, a near-free per-pixel model),
in Mpx/s per core.

Throughput: the bundle's model (DeepLabV3+ resnet34 by default, untrained weights; speed does
not depend on the weights) predicts a synthetic scene end to end (reads, blending, staging,
COG with overviews), and the same tiles go through the model alone in the same number of
plain processes run concurrently. This machine's cores share cache and memory bandwidth, so
each worker count is compared with its own model-only run, not with one process.

Memory: a near-free per-pixel model (pixelnet) isolates the engine's own cost; peak RSS of
each worker process is reported for scenes of growing size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output"
CLASSES = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(6)]


def scene_path(side: int) -> Path:
    from geoseg.synth import SynthSpec, make_scene

    p = OUT / f"scene_{side}.tif"
    if not p.exists():
        t = time.perf_counter()
        make_scene(
            p, SynthSpec(side, side, bands=4, n_classes=6, patch=160, seed=42, nodata_fraction=0.03)
        )
        print(
            f"  generated {p.name} ({side * side / 1e6:.0f} Mpx) in "
            f"{time.perf_counter() - t:.0f} s",
            flush=True,
        )
    return p


def bundle_path(arch: str, encoder: str) -> Path:
    from geoseg.model.factory import create_bundle

    p = OUT / f"bundle_{arch}_{encoder}"
    if not p.exists():
        create_bundle(
            p,
            classes=CLASSES,
            bands=4,
            architecture=arch,
            encoder=encoder,
            mean=[2000.0] * 4,
            std=[1000.0] * 4,
            tile=512,
            overlap=64,
        )
    return p


def job_tiles(scene: Path, bundle: Path, block: int) -> list:
    """The tile windows a prediction job evaluates (all-nodata tiles excluded, as the engine
    skips them), in block order."""
    from geoseg.engine.predict import plan
    from geoseg.model.bundle import read_meta

    job, _, _ = plan(scene, str(bundle), OUT / "unused.tif", block=block, overwrite=True)
    meta = read_meta(bundle)
    grid, tiles = job.grid, []
    for b in job.blocks:
        data, valid = job.scene.read(b.read, meta.bands)
        for ti in b.tiles_rows:
            for tj in b.tiles_cols:
                tw = grid.tile_window(ti, tj)
                if valid[tw.intersect(grid.scene).slices((b.read.row, b.read.col))].any():
                    tiles.append(tw)
    return tiles


def _model_only_proc(bundle, scene, windows, threads, barrier, queue, precision, runtime):
    import torch

    from geoseg.io.scene import Scene
    from geoseg.model.runner import TilePredictor, normalize

    torch.set_num_threads(threads)
    pred = TilePredictor(str(bundle), device="cpu", precision=precision, runtime=runtime)
    sc = Scene.of(str(scene))
    tiles = []
    for w in windows:
        d, v = sc.read(w, pred.meta.bands)
        tiles.append(normalize(d, v, pred.meta)[None])
    barrier.wait()
    t = time.perf_counter()
    for x in tiles:
        pred.predict(x)
    queue.put(time.perf_counter() - t)


def model_only(
    bundle: Path,
    scene: Path,
    tiles: list,
    procs: int,
    threads: int = 1,
    precision: str = "fp32",
    runtime: str = "torch",
) -> float:
    """Seconds for ``procs`` concurrent plain processes to run all ``tiles`` (split evenly)."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    ps = [
        ctx.Process(
            target=_model_only_proc,
            args=(bundle, scene, tiles[i::procs], threads, barrier, queue, precision, runtime),
        )
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    times = [queue.get() for _ in ps]
    for p in ps:
        p.join()
    return max(times)


def end_to_end(
    scene: Path,
    bundle: Path,
    workers: int,
    threads: int = 1,
    block: int = 2048,
    malloc_trim: bool = False,
    precision: str = "fp32",
    runtime: str = "torch",
    client=None,
    warm: Path | None = None,
) -> dict:
    import dask
    from distributed import Client, LocalCluster

    from geoseg.cluster.setup import PRELOAD, cluster_config, unset_malloc_trim
    from geoseg.engine.predict import predict

    kw = dict(block=block, overwrite=True, torch_threads=threads)
    kw.update(precision=precision, runtime=runtime)
    out = OUT / f"pred_{scene.stem}_{workers}x{threads}.tif"
    if client is not None:  # a warm cluster: a first small job loads the model
        if warm is not None:
            predict(warm, str(bundle), OUT / "warm.tif", client=client, **kw)
        res = predict(scene, str(bundle), out, client=client, **kw)
        return _row(res)
    env = {} if malloc_trim else cluster_config()  # as geoseg starts its local clusters
    if not malloc_trim:
        unset_malloc_trim()  # an earlier default-config cluster leaves it in os.environ
    with dask.config.set(env):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            preload=[PRELOAD],
        )
    with cluster, Client(cluster) as c:
        res = predict(scene, str(bundle), out, client=c, **kw)
    return _row(res)


def _row(res) -> dict:
    return {
        "seconds": res.seconds,
        "mpx": res.megapixels,
        "mpx_s": res.mpx_per_s,
        "tiles": res.tiles,
        "blocks": res.blocks,
        "assembly_s": res.assembly_seconds,
        "peak_rss_mb": sorted(res.peak_rss_mb.values()),
        "runtime": res.runtime,
    }


def bench_runtimes(args, results):
    import subprocess

    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.model.runtime import openvino_version

    scene = scene_path(args.side)
    warm = scene_path(1024)
    bundle = bundle_path(args.arch, args.encoder)
    tiles = job_tiles(scene, bundle, args.block)
    mpx = args.side * args.side / 1e6
    combos = [("torch", "fp32"), ("torch", "bf16")]
    combos += [("openvino", "fp32"), ("openvino", "bf16")] if openvino_version() else []
    print(
        f"\n## Runtimes: {args.arch}/{args.encoder}, {mpx:.1f} Mpx, {len(tiles)} tiles of 512, "
        f"{args.workers} workers x 1 thread, warm cluster"
    )
    print(
        "| runtime | model-only Mpx/s | end-to-end Mpx/s | end-to-end / model-only "
        "| vs torch/fp32 end-to-end |\n|---|---|---|---|---|"
    )
    rows = []
    with connect(ClusterOptions(workers=args.workers)) as c:
        for rt, prec in combos:
            m = model_only(bundle, scene, tiles, args.workers, precision=prec, runtime=rt)
            e = end_to_end(
                scene,
                bundle,
                args.workers,
                block=args.block,
                precision=prec,
                runtime=rt,
                client=c,
                warm=warm,
            )
            row = {"runtime": f"{rt}/{prec}", "model_only_mpx_s": mpx / m, **e}
            row["ratio"] = e["mpx_s"] / row["model_only_mpx_s"]
            row["speedup"] = e["mpx_s"] / rows[0]["mpx_s"] if rows else 1.0
            rows.append(row)
            print(
                f"| {row['runtime']} | {row['model_only_mpx_s']:.3f} | {e['mpx_s']:.3f} | "
                f"{row['ratio']:.2f} | {row['speedup']:.2f}x |",
                flush=True,
            )
        pix = bundle_path("pixelnet", "none")
        e = end_to_end(
            scene,
            pix,
            args.workers,
            block=args.block,
            precision="fp32",
            runtime="torch",
            client=c,
            warm=warm,
        )
    engine = {"pixelnet_mpx_s": e["mpx_s"], "per_core": e["mpx_s"] / args.workers, **e}
    print(
        f"\nengine alone (pixelnet, torch/fp32, warm): {e['mpx_s']:.2f} Mpx/s = "
        f"{engine['per_core']:.2f} Mpx/s per core (assembly {e['assembly_s']:.1f} s)"
    )
    out = OUT / "cold_cli.tif"
    t = time.perf_counter()
    cli = [
        str(Path(sys.executable).with_name("geoseg")),
        "predict",
        str(scene),
        "-m",
        str(bundle),
        "-o",
        str(out),
        "--overwrite",
        "--block",
        str(args.block),
    ]
    subprocess.run(cli, check=True, capture_output=True)
    cold = time.perf_counter() - t
    fastest = max(rows, key=lambda r: r["model_only_mpx_s"])
    print(
        f"cold CLI run, defaults: {cold:.1f} s, {mpx / cold:.3f} Mpx/s = "
        f"{mpx / cold / fastest['model_only_mpx_s']:.2f} x the fastest model-only "
        f"({fastest['runtime']}); {mpx / cold / rows[0]['mpx_s']:.2f} x torch/fp32 warm"
    )
    results["runtimes"] = {"rows": rows, "engine": engine, "cold_cli_s": cold, "mpx": mpx}


def bench_throughput(args, results):
    scene = scene_path(args.side)
    bundle = bundle_path(args.arch, args.encoder)
    tiles = job_tiles(scene, bundle, args.block)
    mpx = args.side * args.side / 1e6
    print(
        f"\n## Throughput: {args.arch}/{args.encoder}, {mpx:.1f} Mpx scene, "
        f"{len(tiles)} tiles of 512 (overlap 64), block {args.block}"
    )
    print(f"{'workers':>8} {'model-only Mpx/s':>17} {'end-to-end Mpx/s':>17} {'ratio':>6}")
    rows = []
    for w in (1, 2):
        m = model_only(bundle, scene, tiles, w)
        e = end_to_end(scene, bundle, w, block=args.block)
        row = {
            "workers": w,
            "model_only_s": m,
            "model_only_mpx_s": mpx / m,
            **e,
            "ratio": (mpx / e["seconds"]) / (mpx / m),
        }
        rows.append(row)
        print(f"{w:>8} {mpx / m:>17.3f} {e['mpx_s']:>17.3f} {row['ratio']:>6.3f}", flush=True)
    print(
        f"2-vs-1-worker speed-up: end-to-end {rows[1]['mpx_s'] / rows[0]['mpx_s']:.2f}x, "
        f"model-only {rows[1]['model_only_mpx_s'] / rows[0]['model_only_mpx_s']:.2f}x"
    )
    results["throughput"] = rows


def bench_layout(args, results):
    """Choosing the local cluster's layout by measurement: processes x model threads."""
    scene = scene_path(args.side)
    bundle = bundle_path(args.arch, args.encoder)
    print("\n## Local cluster layout (end-to-end)")
    rows = []
    for w, t, trim in ((2, 1, False), (1, 2, False), (2, 1, True)):
        e = end_to_end(scene, bundle, w, threads=t, block=args.block, malloc_trim=trim)
        label = f"{w} worker(s) x {t} thread(s)" + (
            " with nanny MALLOC_TRIM_THRESHOLD_=65536" if trim else ""
        )
        rows.append({"layout": label, **e})
        print(f"  {label:<60} {e['mpx_s']:.3f} Mpx/s", flush=True)
    results["layout"] = rows


def memory_series(title: str, scenes: list[Path], block: int, **kw) -> list[dict]:
    """pixelnet (the engine's own cost) end to end on each scene, 2 workers: time, assembly
    and peak RSS per worker; the largest peak over the smallest."""
    bundle = bundle_path("pixelnet", "none")
    print(f"\n## {title}")
    print(f"{'Mpx':>6} {'seconds':>8} {'Mpx/s':>7} {'assembly s':>11} {'peak RSS (MiB)':>18}")
    rows = []
    for scene in scenes:
        e = end_to_end(scene, bundle, 2, block=block, **kw)
        rows.append({"scene": scene.name, **e})
        print(
            f"{e['mpx']:>6.0f} {e['seconds']:>8.1f} {e['mpx_s']:>7.2f} {e['assembly_s']:>11.1f} "
            f"{', '.join(f'{r:.0f}' for r in e['peak_rss_mb']):>18}",
            flush=True,
        )
        (OUT / f"pred_{scene.stem}_2x1.tif").unlink(missing_ok=True)
    peaks = [max(r["peak_rss_mb"]) for r in rows]
    print(
        f"peak RSS per worker, largest / smallest scene: {max(peaks) / min(peaks):.3f} "
        f"(max {max(peaks):.0f} MiB)"
    )
    return rows


def bench_memory(args, results):
    scenes = [scene_path(side) for side in args.memory_sides]
    title = "Memory vs scene size (pixelnet: the engine's own cost), 2 workers"
    results["memory"] = memory_series(title, scenes, args.block)


def repeated_vrt(tile: Path, n: int) -> Path:
    """A VRT mosaic of ``tile`` repeated n x n times (a 1 Gpx scene in a few kB of disk).

    Written by hand: GDAL's tools mosaic different files (gdalbuildvrt) but have no way to
    repeat one, and the VRT format is a short, documented XML."""
    import rasterio

    out = tile.with_name(f"{tile.stem}_x{n}.vrt")
    with rasterio.open(tile) as src:
        h, w, t = src.height, src.width, src.transform
        gt = ", ".join(repr(v) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
        bands = []
        for b in range(1, src.count + 1):
            sources = "".join(
                f'<SimpleSource><SourceFilename relativeToVRT="1">{tile.name}</SourceFilename>'
                f"<SourceBand>{b}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                f'<DstRect xOff="{j * w}" yOff="{i * h}" xSize="{w}" ySize="{h}"/>'
                "</SimpleSource>"
                for i in range(n)
                for j in range(n)
            )
            nodata = "" if src.nodata is None else f"<NoDataValue>{src.nodata:g}</NoDataValue>"
            dtype = {"uint16": "UInt16", "uint8": "Byte", "float32": "Float32"}[src.dtypes[0]]
            bands.append(
                f'<VRTRasterBand dataType="{dtype}" band="{b}">{nodata}{sources}</VRTRasterBand>'
            )
        srs = f"<SRS>{src.crs.to_wkt()}</SRS>" if src.crs else ""
    out.write_text(
        f'<VRTDataset rasterXSize="{w * n}" rasterYSize="{h * n}">{srs}'
        f"<GeoTransform>{gt}</GeoTransform>{''.join(bands)}</VRTDataset>\n"
    )
    return out


def bench_gigapixel(args, results):
    """Flat memory from 17 Mpx to 1 Gpx: the 4096-px scene repeated 1x1, 4x4 and 8x8."""
    tile = scene_path(4096)
    scenes = [repeated_vrt(tile, n) for n in args.giga_repeats]
    title = "Memory and assembly from 17 Mpx to 1 Gpx (pixelnet), 2 workers, block 2048"
    rows = memory_series(title, scenes, 2048, precision="auto", runtime="auto")
    results["gigapixel"] = rows


def bench_zarr(args, results):
    """The output stage: one task streaming the staged blocks into a COG, against every block
    task writing its own chunks of a Zarr store, on the same scene (pixelnet, 2 workers)."""
    import shutil

    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict

    bundle = bundle_path("pixelnet", "none")
    scene = repeated_vrt(scene_path(4096), args.zarr_repeat)
    print(f"\n## Output stage: COG assembly vs parallel Zarr writes ({scene.name}), 2 workers")
    print(f"{'output':>8} {'Mpx':>6} {'output s':>9} {'output Mpx/s':>13} {'total s':>8}")
    rows = []
    with connect(ClusterOptions(workers=2)) as c:
        for fmt in ("tif", "zarr"):
            out = OUT / f"zarr_bench.{fmt}"
            res = predict(scene, str(bundle), out, client=c, block=2048, overwrite=True)
            mpx = res.megapixels
            rows.append(
                {
                    "format": fmt,
                    "mpx": mpx,
                    "output_s": res.assembly_seconds,
                    "total_s": res.seconds,
                }
            )
            print(
                f"{fmt:>8} {mpx:>6.0f} {res.assembly_seconds:>9.1f} "
                f"{mpx / res.assembly_seconds:>13.1f} {res.seconds:>8.1f}",
                flush=True,
            )
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    print(f"Zarr output stage / COG: {rows[0]['output_s'] / rows[1]['output_s']:.2f}x faster")
    results["zarr"] = rows


def bench_service(args, results):
    """`geoseg predict` as a user meets it on a 16.8 Mpx scene: cold (its own cluster) and on a
    warm `geoseg serve`, with the bundle's model and with pixelnet (the engine alone), against
    the model alone in the runtime the CLI chose."""
    import subprocess

    import rasterio

    side = args.service_side
    scene, mpx = scene_path(side), side * side / 1e6
    bundle, pix = bundle_path(args.arch, args.encoder), bundle_path("pixelnet", "none")
    geoseg = str(Path(sys.executable).with_name("geoseg"))
    env = {k: v for k, v in os.environ.items() if k != "GEOSEG_NO_SERVICE"}
    env["GEOSEG_SERVICE_FILE"] = str(OUT / "service.json")

    def run(model: Path, name: str, *extra: str) -> float:
        out = OUT / f"service_{name}.tif"
        cli = [geoseg, "predict", str(scene), "-m", str(model), "-o", str(out), "--overwrite"]
        t = time.perf_counter()
        subprocess.run([*cli, *extra], check=True, capture_output=True, cwd=OUT, env=env)
        return time.perf_counter() - t

    print(f"\n## The CLI cold and on a warm service: {mpx:.1f} Mpx, {args.workers} workers")
    cold = run(bundle, "cold", "--scheduler", "local", "--workers", str(args.workers))
    with rasterio.open(OUT / "service_cold.tif") as src:
        runtime, precision = src.tags()["GEOSEG_RUNTIME"].split("/")[:2]
    tiles = job_tiles(scene, bundle, args.block)
    # the reference's median of three runs: one run of the two plain processes once measured
    # 0.90 Mpx/s against 1.39-1.42 in five others on the same CPU, cause not found
    refs = sorted(
        mpx / model_only(bundle, scene, tiles, args.workers, precision=precision, runtime=runtime)
        for _ in range(3)
    )
    m = refs[1]
    pix_cold = run(pix, "pix_cold", "--scheduler", "local", "--workers", str(args.workers))
    svc = subprocess.Popen(
        [geoseg, "serve", "--workers", str(args.workers)],
        cwd=OUT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t = time.perf_counter()
        while not (OUT / "service.json").exists():
            time.sleep(0.05)
        start = time.perf_counter() - t
        first, warm = run(bundle, "first"), run(bundle, "warm")
        run(pix, "pix_first")
        pix_warm = run(pix, "pix_warm")
    finally:
        svc.terminate()
        svc.wait(timeout=60)
    rows = {
        "model_only_mpx_s": m,
        "model_only_runs_mpx_s": refs,
        "runtime": f"{runtime}/{precision}",
        "cold_s": cold,
        "service_start_s": start,
        "service_first_s": first,
        "service_warm_s": warm,
        "pixelnet_cold_s": pix_cold,
        "pixelnet_warm_s": pix_warm,
    }
    print(
        f"model alone ({runtime}/{precision}): {m:.3f} Mpx/s (median of "
        f"{', '.join(f'{r:.3f}' for r in refs)})"
    )
    print("| run | seconds | Mpx/s | / model-only |\n|---|---|---|---|")
    for label, sec in (
        ("cold CLI (own cluster)", cold),
        ("CLI on the service, first job", first),
        ("CLI on the warm service", warm),
    ):
        print(f"| {label} | {sec:.1f} | {mpx / sec:.3f} | {mpx / sec / m:.2f} |")
    for label, sec in (("pixelnet, cold CLI", pix_cold), ("pixelnet, warm service", pix_warm)):
        print(
            f"| {label} | {sec:.1f} | {mpx / sec:.2f} ({mpx / sec / args.workers:.2f} per "
            "core) | - |"
        )
    print(f"service start: {start:.1f} s")
    results["service"] = rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        choices=["runtimes", "throughput", "layout", "memory", "gigapixel", "zarr", "service"],
        action="append",
    )
    ap.add_argument("--workers", type=int, default=2, help="runtimes: workers (one per core)")
    ap.add_argument("--arch", default="deeplabv3plus")
    ap.add_argument("--encoder", default="resnet34")
    ap.add_argument("--side", type=int, default=4480, help="throughput scene side (pixels)")
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--service-side", type=int, default=4096, help="service: scene side")
    ap.add_argument("--memory-sides", type=int, nargs="+", default=[4096, 8192, 16384])
    ap.add_argument(
        "--giga-repeats", type=int, nargs="+", default=[1, 4, 8], help="gigapixel: n x n"
    )
    ap.add_argument("--zarr-repeat", type=int, default=4, help="zarr: the scene, n x n 4096 px")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    import torch

    from geoseg.model.runtime import cpu_bf16, cpu_name, openvino_version

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, native bf16: {cpu_bf16() or 'no'}, "
        f"torch {torch.__version__}, OpenVINO {openvino_version()}, "
        f"cuda {'yes' if torch.cuda.is_available() else 'no'}"
    )
    results: dict = {"argv": sys.argv[1:]}
    benches = {
        "runtimes": bench_runtimes,
        "throughput": bench_throughput,
        "layout": bench_layout,
        "memory": bench_memory,
        "gigapixel": bench_gigapixel,
        "zarr": bench_zarr,
        "service": bench_service,
    }
    for name in args.only or list(benches):
        benches[name](args, results)
    (OUT / "predict.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

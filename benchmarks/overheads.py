"""The Dask workers' own overheads: warm jobs on a local cluster started with Dask's defaults
for the event loop's latency check and the task profiler, against geoseg's config, interleaved.

    python benchmarks/overheads.py                  # 16.8 Mpx, the runtime the CLI picks
    python benchmarks/overheads.py --rounds 3 --jobs 3

Each round starts one cluster of each config (2 single-threaded workers), loads the model with
a first job and times ``--jobs`` more; the model alone on the same tiles (two plain processes,
as benchmarks/predict.py runs it, median of three) is the reference. Prints every job's
seconds, the medians and their ratio to the model alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import predict as bench  # noqa: E402  (benchmarks/predict.py: scenes, bundles, model alone)

DASK_DEFAULTS = {
    "distributed.admin.tick.interval": "20ms",
    "distributed.worker.profile.enabled": True,
}


def warm_jobs(scene: Path, bundle: Path, extra: dict, jobs: int, runtime: str, precision: str):
    import dask
    from distributed import Client, LocalCluster

    from geoseg.cluster.setup import PRELOAD, cluster_config, unset_malloc_trim
    from geoseg.engine.predict import predict

    unset_malloc_trim()
    with dask.config.set({**cluster_config(), **extra}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            preload=[PRELOAD],
        )
    kw = dict(overwrite=True, block=2048, runtime=runtime, precision=precision)
    with cluster, Client(cluster) as c:
        predict(scene, str(bundle), bench.OUT / "overheads_warm.tif", client=c, **kw)
        return [
            predict(scene, str(bundle), bench.OUT / "overheads.tif", client=c, **kw).seconds
            for _ in range(jobs)
        ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runtime", default="openvino")
    ap.add_argument("--precision", default="bf16")
    args = ap.parse_args()
    bench.OUT.mkdir(exist_ok=True)
    from geoseg.model.runtime import cpu_bf16, cpu_name

    scene = bench.scene_path(args.side)
    model = bench.bundle_path("deeplabv3plus", "resnet34")
    mpx = args.side**2 / 1e6
    print(f"machine: {cpu_name()}, native bf16: {cpu_bf16() or 'no'}; {mpx:.1f} Mpx, 2 workers")
    tiles = bench.job_tiles(scene, model, 2048)
    runs = sorted(
        bench.model_only(model, scene, tiles, 2, precision=args.precision, runtime=args.runtime)
        for _ in range(3)
    )
    alone = runs[1]  # the median: single runs varied 11.9-13.2 s
    print(f"model alone ({args.runtime}/{args.precision}): {alone:.2f} s (median of 3: {runs})")
    times: dict[str, list[float]] = {"Dask's defaults": [], "geoseg's config": []}
    for _ in range(args.rounds):
        for name, extra in (("Dask's defaults", DASK_DEFAULTS), ("geoseg's config", {})):
            got = warm_jobs(scene, model, extra, args.jobs, args.runtime, args.precision)
            times[name] += got
            print(f"  {name}: {', '.join(f'{t:.2f}' for t in got)} s", flush=True)
    print("| config | warm jobs (s) | median | / model alone |\n|---|---|---|---|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {', '.join(f'{t:.2f}' for t in ts)} | {m:.2f} | {alone / m:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

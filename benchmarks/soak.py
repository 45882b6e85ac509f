"""Soak: one long-lived LocalCluster runs predict jobs back to back, failing ones in between.

    python benchmarks/soak.py                 # 30 jobs, 2 workers (~3 min on 2 cores)
    python benchmarks/soak.py --jobs 60

Scenes of several sizes (pixelnet, so the engine's own cost dominates) alternate with jobs that
fail: a truncated GeoTIFF (fails inside the workers, mid-read) and a scene with the wrong band
count (fails while planning). After every job it records each worker's RSS and open file
descriptors, the client's descriptors, and any staging folder or partial file left behind.
Printed: RSS after the last job relative to after the first, descriptor growth, leftovers.
tests/engine/test_soak.py runs the same loop for 5 jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "soak"
CLASSES = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(5)]


def _worker_probe() -> dict:
    import psutil

    p = psutil.Process()
    files = sorted(f.path for f in p.open_files())
    return {"rss_mb": p.memory_info().rss / 2**20, "fds": p.num_fds(), "files": files}


def make_inputs(folder: Path, sides=(2048, 1536, 1024, 512)) -> dict:
    """Scenes of several sizes (the largest first: it sets the workers' high-water mark, so
    growth after it is what a leak would show), a truncated copy and a 3-band scene, and a
    pixelnet bundle."""
    from geoseg.model.factory import create_bundle
    from geoseg.synth import SynthSpec, make_scene

    folder.mkdir(parents=True, exist_ok=True)
    scenes = []
    for i, side in enumerate(sides):
        p = folder / f"scene_{side}.tif"
        if not p.exists():
            make_scene(p, SynthSpec(side, side, bands=4, n_classes=5, seed=100 + i))
        scenes.append(p)
    truncated = folder / "truncated.tif"
    if not truncated.exists():
        data = scenes[0].read_bytes()
        truncated.write_bytes(data[: len(data) // 2])
    three = folder / "three_bands.tif"
    if not three.exists():
        make_scene(three, SynthSpec(300, 300, bands=3, seed=7))
    bundle = folder / "pixelnet"
    if not bundle.exists():
        create_bundle(
            bundle,
            classes=CLASSES,
            bands=4,
            architecture="pixelnet",
            encoder="none",
            mean=[2000.0] * 4,
            std=[1000.0] * 4,
            tile=256,
            overlap=32,
        )
    return {"scenes": scenes, "bad": [truncated, three], "bundle": bundle}


def schedule(inputs: dict, jobs: int) -> list[tuple[Path, bool]]:
    """(scene, should_fail) for each job: every third job fails, alternating the two kinds."""
    plan, good, bad = [], 0, 0
    for i in range(jobs):
        if i % 3 == 2:
            plan.append((inputs["bad"][bad % len(inputs["bad"])], True))
            bad += 1
        else:
            plan.append((inputs["scenes"][good % len(inputs["scenes"])], False))
            good += 1
    return plan


def soak(client, inputs: dict, jobs: int, out: Path, log=print) -> list[dict]:
    """Run ``jobs`` predict jobs on ``client``; one record per job."""
    from geoseg.engine.predict import predict
    from geoseg.errors import GeoSegError

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (scene, should_fail) in enumerate(schedule(inputs, jobs)):
        t0 = time.perf_counter()
        target = out / f"map_{i % 4}.tif"  # outputs are replaced, as a user re-running would
        failed = None
        try:
            predict(scene, inputs["bundle"], target, client=client, block=512, overwrite=True)
        except GeoSegError as e:
            failed = str(e)
        if bool(failed) != should_fail:
            raise AssertionError(
                f"job {i} on {scene.name}: expected failure={should_fail}, {failed}"
            )
        workers = client.run(_worker_probe)
        left = sorted(
            p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".staging")
        )
        row = {
            "job": i,
            "scene": scene.name,
            "failed": bool(failed),
            "seconds": time.perf_counter() - t0,
            "worker_rss_mb": [w["rss_mb"] for w in workers.values()],
            "worker_fds": [w["fds"] for w in workers.values()],
            "worker_files": [w["files"] for w in workers.values()],
            "client_fds": _worker_probe()["fds"],
            "leftovers": left,
        }
        rows.append(row)
        log(
            f"{i:>3} {scene.name:<18} {'failed' if failed else 'ok':<6} "
            f"{row['seconds']:>6.1f} s  RSS {', '.join(f'{r:.0f}' for r in row['worker_rss_mb'])}"
            f" MiB  fds {row['worker_fds']} client {row['client_fds']}"
            f"{'  LEFT: ' + ', '.join(left) if left else ''}"
        )
    return rows


CYCLE = 6  # jobs until every scene size and both failures have run once


def _ratios(a: dict, b: dict) -> list[float]:
    return [y / x for x, y in zip(a["worker_rss_mb"], b["worker_rss_mb"], strict=True)]


def _growth(a: dict, b: dict) -> list[int]:
    return [y - x for x, y in zip(a["worker_fds"], b["worker_fds"], strict=True)]


def summary(rows: list[dict]) -> dict:
    """Last job against the first, and against the end of the first cycle (after the largest
    scene and both failures ran once: the allocator's high-water mark is reached there)."""
    first, last = rows[0], rows[-1]
    cycle = rows[min(CYCLE, len(rows)) - 1]
    return {
        "jobs": len(rows),
        "failed_jobs": sum(r["failed"] for r in rows),
        "rss_last_over_first": _ratios(first, last),
        "rss_last_over_first_cycle": _ratios(cycle, last),
        "rss_max_mb": max(max(r["worker_rss_mb"]) for r in rows),
        "worker_fd_growth": _growth(first, last),
        "worker_fd_growth_after_first_cycle": _growth(cycle, last),
        "client_fd_growth": last["client_fds"] - first["client_fds"],
        "client_fd_growth_after_first_cycle": last["client_fds"] - cycle["client_fds"],
        # regular files a worker holds open at the end and did not after the first job: a
        # library's read-only database opened on first use (PROJ's proj.db) is no leak
        "worker_new_files": sorted(
            {
                f
                for a, b in zip(first["worker_files"], last["worker_files"], strict=True)
                for f in set(b) - set(a)
            }
        ),
        "leftovers": sorted({n for r in rows for n in r["leftovers"]}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.model.runtime import cpu_name

    inputs = make_inputs(OUT / "inputs")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; {args.jobs} jobs, {args.workers} workers"
    )
    with connect(ClusterOptions(workers=args.workers)) as c:
        rows = soak(c, inputs, args.jobs, OUT / "maps")
    s = summary(rows)

    def fmt(v):
        return ", ".join(f"{r:.3f}" for r in v)

    print(
        f"worker RSS after the last job / after the first: {fmt(s['rss_last_over_first'])}; "
        f"/ after the first cycle (job {CYCLE}): {fmt(s['rss_last_over_first_cycle'])} (max "
        f"{s['rss_max_mb']:.0f} MiB)\nopen descriptors, growth from the first job: workers "
        f"{s['worker_fd_growth']}, client {s['client_fd_growth']}; from the first cycle: "
        f"workers {s['worker_fd_growth_after_first_cycle']}, client "
        f"{s['client_fd_growth_after_first_cycle']}; files newly open in workers: "
        f"{[Path(f).name for f in s['worker_new_files']] or 'none'}\nleftovers (staging, "
        "partial files): "
        f"{s['leftovers'] or 'none'}"
    )
    (OUT / "soak.json").write_text(json.dumps({"rows": rows, "summary": s}, indent=2))


if __name__ == "__main__":
    main()

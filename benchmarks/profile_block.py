"""Profile of the engine's per-block path: one block task run in this process, under cProfile.

    python benchmarks/profile_block.py                      # pixelnet, torch/fp32
    python benchmarks/profile_block.py --arch deeplabv3plus --runtime openvino --precision bf16

A 2240 x 2240 synthetic scene (one block of 25 tiles of 512, overlap 64), the block predicted
once to warm up, then again profiled on one model thread. Prints the block's CPU seconds (the
read-ahead thread included) and Mpx/s per core, the CPU per stage and its share of the block
(reading + normalising is the read-ahead thread's CPU), and the main thread's top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "profile"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="pixelnet")
    ap.add_argument("--encoder", default="resnet34")
    ap.add_argument("--runtime", default="torch", choices=["torch", "openvino"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=5, help="profiled runs (the median is shown)")
    args = ap.parse_args()

    import torch

    from geoseg.engine import blocks
    from geoseg.engine.predict import plan
    from geoseg.model.factory import create_bundle
    from geoseg.synth import SynthSpec, make_scene

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    scene = OUT / "scene_2240.tif"
    if not scene.exists():
        make_scene(scene, SynthSpec(2240, 2240, bands=4, n_classes=6, patch=160, seed=42))
    bundle = OUT / f"bundle_{args.arch}_{args.encoder}"
    if not bundle.exists():
        create_bundle(
            bundle,
            classes=[{"id": i + 1, "name": f"class{i + 1}"} for i in range(6)],
            bands=4,
            architecture=args.arch,
            encoder=args.encoder,
            mean=[2000.0] * 4,
            std=[1000.0] * 4,
            tile=512,
            overlap=64,
        )
    job, _, _ = plan(
        str(scene),
        str(bundle),
        OUT / "out.tif",
        block=2240,
        overwrite=True,
        device="cpu",
        precision=args.precision,
        runtime=args.runtime,
    )

    def fresh() -> None:
        shutil.rmtree(job.staging, ignore_errors=True)
        Path(job.staging).mkdir(parents=True)

    fresh()
    blocks.predict_block(job, 0, 0)  # warm-up: model load, conversion, caches
    runs = []
    for _ in range(args.repeat):  # the run of median CPU is shown
        fresh()
        prof = cProfile.Profile(time.thread_time)  # the main thread's functions
        t, tm = time.process_time(), time.thread_time()
        prof.enable()
        s = blocks.predict_block(job, 0, 0)
        prof.disable()
        runs.append((time.process_time() - t, time.thread_time() - tm, prof, s))
    shutil.rmtree(job.staging, ignore_errors=True)
    runs.sort(key=lambda r: r[0])
    cpu, main_cpu, prof, s = runs[len(runs) // 2]
    print(
        f"{args.arch} {args.runtime}/{args.precision}: block {s['pixels'] / 1e6:.2f} Mpx, "
        f"{s['tiles']} tiles, {cpu:.2f} CPU s (median of {len(runs)}; "
        f"{runs[0][0]:.2f}-{runs[-1][0]:.2f}) -> {s['pixels'] / 1e6 / cpu:.2f} Mpx/s per core"
    )
    st = pstats.Stats(prof)
    stages(st, cpu, main_cpu)
    st.sort_stats("tottime").print_stats(args.top)


STAGES = [  # (stage, module path suffix, function): cumulative CPU of the main thread
    ("model (forward, activation)", "model/runner.py", "_probs"),
    ("blending (fixed-point sums)", "model/accumulate.py", "add_fixed"),
    ("batching (tile stack, to tensor)", "engine/blocks.py", "_predict_batch"),
    ("argmax / finalize", "engine/blocks.py", "_finalize"),
    ("staging (.npz)", "io/staged.py", "save_npz"),
]


def stages(st: pstats.Stats, cpu: float, main_cpu: float) -> None:
    """CPU seconds per stage of the block and their share: the main thread's from the
    profile, reading + normalising from the read-ahead thread (process minus main CPU)."""
    cum = {}
    for (path, _, fn), (_, _, _, ct, _) in st.stats.items():
        for name, suffix, want in STAGES:
            if fn == want and path.endswith(suffix):
                cum[name] = cum.get(name, 0.0) + ct
    # _predict_batch holds the model and the blending: batching is what is left of it
    batching = STAGES[2][0]
    cum[batching] = cum.get(batching, 0.0) - cum.get(STAGES[0][0], 0) - cum.get(STAGES[1][0], 0)
    rows = [*cum.items(), ("read + normalise (read-ahead thread)", cpu - main_cpu)]
    rows.append(("other", cpu - sum(v for _, v in rows)))
    print(f"{'stage':40s} {'CPU s':>7s} {'share':>6s}")
    for name, v in rows:
        print(f"{name:40s} {v:7.3f} {v / cpu:6.1%}")
    print()


if __name__ == "__main__":
    main()

"""Profile of the engine's per-block path: one block task run in this process, under cProfile.

    python benchmarks/profile_block.py                      # pixelnet, torch/fp32
    python benchmarks/profile_block.py --arch deeplabv3plus --runtime openvino --precision bf16

A 2240 x 2240 synthetic scene (one block of 25 tiles of 512, overlap 64), the block predicted
once to warm up, then again profiled in CPU time (``time.process_time``: the read-ahead thread
included) on one model thread. Prints CPU seconds, Mpx/s per core and the top functions.
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
    fresh()
    prof = cProfile.Profile(time.process_time)
    t = time.process_time()
    prof.enable()
    s = blocks.predict_block(job, 0, 0)
    prof.disable()
    cpu = time.process_time() - t
    shutil.rmtree(job.staging, ignore_errors=True)
    print(
        f"{args.arch} {args.runtime}/{args.precision}: block {s['pixels'] / 1e6:.2f} Mpx, "
        f"{s['tiles']} tiles, {cpu:.2f} CPU s -> {s['pixels'] / 1e6 / cpu:.2f} Mpx/s per core"
    )
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()

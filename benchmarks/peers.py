"""geoseg side by side with peer tools on one scene, the same weights in every tool.

    python benchmarks/peers.py --peer-python /tmp/peers/bin/python   # a venv with geoai-py
    python benchmarks/peers.py --runs 3 --side 4096

The peers live in a separate virtual environment (their pins clash with geoseg's), e.g.
``python3.11 -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.14.1
torchvision==0.29.1 geoai-py segmentation-models-pytorch``; a peer that its Python cannot
import is skipped with a note. raster-vision is not in yet (its predictor wants a model bundle
of its own format). DeepLabV3+ resnet18
(random weights, seed 0) on a synthetic 4-band scene, tile 512, overlap 64: geoseg's CLI cold
(cluster start, model load, COG with overviews) with its defaults and in torch/fp32, and
geoai's ``predict_geotiff`` (one process, torch on every core, batch 4 as its default, argmax
to uint8), each timed as a whole process. Prints Mpx/s (median of --runs) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "peers"

GEOAI = r"""
import sys, numpy as np
import segmentation_models_pytorch as smp
from safetensors.torch import load_file
from geoai.inference import predict_geotiff
bundle, scene, out = sys.argv[1:4]
m = smp.DeepLabV3Plus(encoder_name="resnet18", encoder_weights=None, in_channels=4, classes=6)
m.load_state_dict(load_file(bundle + "/weights.safetensors")); m.eval()
predict_geotiff(m, scene, out, tile_size=512, overlap=64, num_classes=6, output_dtype="uint8",
    output_nodata=255, preprocess_fn=lambda t: ((t.astype(np.float32) - 2000) / 1000),
    postprocess_fn=lambda p: p.argmax(0)[None].astype(np.uint8), device="cpu", verbose=False)
"""
# runs a command and prints the peak RSS (MiB) of the largest process of its tree
WRAP = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); sys.exit(r.returncode)"
)


def _timed(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", WRAP, *cmd], capture_output=True, text=True)
    dt = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError(f"{cmd[:3]} failed: {r.stderr.strip().splitlines()[-1:]}")
    return dt, float(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-python", default="/tmp/peers/bin/python")
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()

    from geoseg.model.factory import create_bundle
    from geoseg.model.runtime import cpu_bf16, cpu_name
    from geoseg.synth import SynthSpec, make_scene

    OUT.mkdir(parents=True, exist_ok=True)
    scene = OUT / f"scene_{args.side}.tif"
    if not scene.exists():
        make_scene(scene, SynthSpec(args.side, args.side, bands=4, n_classes=6, seed=42))
    bundle = OUT / "bundle_resnet18"
    if not bundle.exists():
        create_bundle(
            bundle,
            classes=[{"id": i + 1, "name": f"class{i + 1}"} for i in range(6)],
            bands=4,
            encoder="resnet18",
            mean=[2000.0] * 4,
            std=[1000.0] * 4,
            tile=512,
            overlap=64,
            seed=0,
        )
    mpx = args.side**2 / 1e6
    geoseg = str(Path(sys.executable).with_name("geoseg"))
    tools: dict[str, list[str]] = {}
    for label, extra in (
        ("geoseg CLI, defaults", []),
        ("geoseg CLI, torch/fp32", ["--precision", "fp32", "--runtime", "torch"]),
    ):
        tools[label] = [
            geoseg,
            "predict",
            str(scene),
            "-m",
            str(bundle),
            "-o",
            str(OUT / "geoseg.tif"),
            "--overwrite",
            *extra,
        ]
    peer = Path(args.peer_python)
    notes = []
    if (
        peer.exists()
        and subprocess.run([peer, "-c", "import geoai.inference"], capture_output=True).returncode
        == 0
    ):
        tools["geoai predict_geotiff"] = [
            str(peer),
            "-c",
            GEOAI,
            str(bundle),
            str(scene),
            str(OUT / "geoai.tif"),
        ]
    else:
        notes.append(f"geoai skipped: not importable by {peer}")
    print(f"{cpu_name()} (native bf16: {cpu_bf16() or 'no'}); {mpx:.1f} Mpx, {args.runs} run(s)")
    print("| tool | Mpx/s (whole process) | seconds | peak RSS MiB |\n|---|---|---|---|")
    rows = []
    for label, cmd in tools.items():
        times, peaks = [], []
        for _ in range(args.runs):
            dt, peak = _timed(cmd)
            times.append(dt)
            peaks.append(peak)
        s = statistics.median(times)
        peak = max((p for p in peaks if p), default=None)
        rows.append({"tool": label, "seconds": s, "mpx_s": mpx / s, "peak_rss_mb": peak})
        print(
            f"| {label} | {mpx / s:.3f} | {s:.1f} | {f'{peak:.0f}' if peak else 'n/a'} |",
            flush=True,
        )
    for n in notes:
        print(n)
    (OUT / "peers.json").write_text(json.dumps({"rows": rows, "notes": notes}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy guard: every runtime and precision against fp32 torch, on real trained bundles.

    python benchmarks/precision.py                       # NC bundle; Dubai where trained
    python benchmarks/precision.py --dubai bench-output/train/dubai

For each bundle, the held-out pixels of its training config are mapped through the engine in
torch/fp32 (the reference), torch/bf16, openvino/fp32 and openvino/bf16 (those this machine
has): pixel agreement of each map with the fp32 map over every mapped pixel, and OA / mIoU
against the reference labels, with the difference to fp32. Targets: agreement >= 99.5 %,
|mIoU - mIoU(fp32)| <= 0.005.

- NC: the committed bundle (examples/models/nc-deeplabv3plus) on its scene, scored on the
  validation blocks of examples/train/nc-model.yaml.
- Dubai: a bundle trained by `python benchmarks/train.py examples/train/dubai.yaml` (its
  output, bench-output/train/dubai), scored on test tile 8; skipped where it or the data
  (../shared/data/dubai) is absent.
Writes bench-output/precision.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "precision"
COMBOS = [("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16")]


def _read(path: str) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as s:
        return s.read(1)


def guard(name: str, config: Path, bundle: Path, role: str, client, combos) -> list[dict]:
    from geoseg.train.heldout import evaluate_heldout

    rows, ref_maps, ref = [], None, None
    for rt, prec in combos:
        t = time.perf_counter()
        ev = evaluate_heldout(
            config,
            bundle,
            OUT / f"{name}-{rt}-{prec}",
            roles=(role,),
            client=client,
            block=1024,
            precision=prec,
            runtime=rt,
        )
        s = ev.summary()
        maps = [_read(p) for p in ev.maps]
        if ref_maps is None:
            ref_maps, ref = maps, s
        same = sum(int((a == b).sum()) for a, b in zip(maps, ref_maps, strict=True))
        total = sum(a.size for a in maps)
        rows.append(
            {
                "bundle": name,
                "runtime": s["runtime"],
                "agreement": same / total,
                "oa": s["oa"],
                "miou": s["miou"],
                "d_miou": s["miou"] - ref["miou"],
                "pixels_scored": s["pixels"],
                "megapixels": s["megapixels"],
                "predict_seconds": s["predict_seconds"],
                "wall_seconds": time.perf_counter() - t,
            }
        )
        r = rows[-1]
        print(
            f"| {name} | {r['runtime']} | {r['agreement'] * 100:.2f} % | {r['oa']:.4f} | "
            f"{r['miou']:.4f} | {r['d_miou']:+.4f} | "
            f"{'yes' if r['agreement'] >= 0.995 and abs(r['d_miou']) <= 0.005 else 'NO'} |",
            flush=True,
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dubai", default=str(ROOT / "bench-output/train/dubai"))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.model.runtime import cpu_bf16, cpu_name, openvino_version

    combos = [c for c in COMBOS if c[0] == "torch" or openvino_version()]
    print(f"{cpu_name()} (native bf16: {cpu_bf16() or 'no'}), OpenVINO {openvino_version()}")
    print(
        "\n| bundle | runtime | agreement with torch/fp32 | OA | mIoU | d mIoU | guard met |"
        "\n|---|---|---|---|---|---|---|"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = [
        (
            "NC",
            ROOT / "examples/train/nc-model.yaml",
            ROOT / "examples/models/nc-deeplabv3plus",
            "val",
        )
    ]
    dubai = Path(args.dubai)
    if (dubai / "bundle.json").exists() and (ROOT.parent / "shared/data/dubai").exists():
        jobs.append(("Dubai", ROOT / "examples/train/dubai.yaml", dubai, "test"))
    else:
        print(f"(Dubai skipped: no bundle at {dubai} or no ../shared/data/dubai)")
    rows = []
    with connect(ClusterOptions(workers=args.workers)) as c:
        for name, cfg, bundle, role in jobs:
            rows += guard(name, cfg, bundle, role, c, combos)
    (ROOT / "bench-output" / "precision.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

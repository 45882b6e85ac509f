"""Radiometric transfer: a model applied to a scene whose bands were brightened, darkened and
bent, predicted with each ``--normalize`` mode.

    python benchmarks/harmonize.py [--bundle examples/models/nc-deeplabv3plus] [--adapt]

The NC 2000 Landsat scene is shifted per band (gains 0.7-1.4, offsets up to +-20 DN and a
gamma; a fixed seed, so the shift is the same each run) and written as float32 band files.
The bundle predicts the original scene (mode bundle: the reference) and the shifted one in
each mode. Printed per mode: pixel agreement with the reference prediction and overall
accuracy / mIoU against examples/data/nc/strata.tif (geoseg evaluate), and the seconds of the
prediction. ``auto`` (the default mode) is run on both scenes and prints what it chose. With
``--adapt``, ``geoseg adapt`` also fits the bundle to the shifted scene (4 epochs of 256
crops: a short fine-tune, the 489 x 443 px scene being small) and the adapted bundle maps
it. Results go in BENCHMARKS.md ("Radiometric transfer").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
NC = ROOT / "examples" / "data" / "nc"
BANDS = [f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70)]


def shift_scene(out: Path, seed: int = 7) -> tuple[list[str], list[dict]]:
    """The NC bands with per-band y = gain * 255 * (x / 255) ** gamma + offset."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths, shifts = [], []
    for name in BANDS:
        gain, offset, gamma = rng.uniform(0.7, 1.4), rng.uniform(-20, 20), rng.uniform(0.8, 1.25)
        with rasterio.open(NC / name) as src:
            x = src.read(1)
            valid = src.read_masks(1) > 0
            prof = src.profile
        y = np.where(valid, gain * 255 * (np.clip(x, 0, None) / 255) ** gamma + offset, x)
        prof.update(dtype="float32")
        p = out / name
        with rasterio.open(p, "w", **prof) as dst:
            dst.write(y.astype(np.float32), 1)
        paths.append(str(p))
        shifts.append({"band": name, "gain": gain, "offset": offset, "gamma": gamma})
    return paths, shifts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=str(ROOT / "examples/models/nc-deeplabv3plus"))
    ap.add_argument("--out", default=str(ROOT / "bench-output/harmonize"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--adapt", action="store_true", help="also geoseg adapt to the shifted scene")
    args = ap.parse_args()

    from geoseg.accuracy.evaluate import evaluate
    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict

    out = Path(args.out)
    shifted, shifts = shift_scene(out / "shifted")
    original = [str(NC / b) for b in BANDS]
    rows = []
    with connect(ClusterOptions(workers=args.workers)) as client:

        def run(scene, mode: str, name: str, bundle: str = args.bundle) -> dict:
            t0 = time.perf_counter()
            res = predict(
                scene,
                bundle,
                out / f"{name}.tif",
                block=256,
                normalize=mode,
                client=client,
                overwrite=True,
            )
            secs = time.perf_counter() - t0
            rep = evaluate(
                res.path,
                NC / "strata.tif",
                out / f"{name}-accuracy",
                client=client,
                overwrite=True,
            )
            with rasterio.open(res.path) as src:
                cls = src.read(1)
            iou = [c["iou"] for c in rep["per_class"] if c["iou"] is not None]
            return {
                "name": name,
                "mode": mode if mode != "auto" else f"auto -> {res.normalize}",
                "classes": cls,
                "seconds": secs,
                "oa": rep["overall"]["overall_accuracy"],
                "miou": float(np.mean(iou)),
            }

        ref = run(original, "bundle", "original-bundle")
        rows.append(ref)
        for mode in ("scene", "match", "auto"):
            rows.append(run(original, mode, f"original-{mode}"))
        for mode in ("bundle", "scene", "match", "auto"):
            rows.append(run(shifted, mode, f"shifted-{mode}"))
        if args.adapt:
            from geoseg.train.adapt import adapt

            t0 = time.perf_counter()
            fit = adapt(
                args.bundle,
                shifted,
                out / "adapted",
                epochs=4,
                samples_per_epoch=256,
                client=client,
                overwrite=True,
            )
            print(
                f"geoseg adapt: {time.perf_counter() - t0:.0f} s, pseudo-labels on "
                f"{fit['pseudo_labelled_share']:.1%} of the pixels ({fit['normalize']})"
            )
            rows.append(run(shifted, "auto", "shifted-adapted", str(out / "adapted")))
    print(
        "shift per band: "
        + json.dumps(
            [{k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()} for s in shifts]
        )
    )
    print(
        f"{'scene / mode':<22} {'used':<16} {'agree':>7} {'OA':>7} {'mIoU':>7} {'dOA':>7} {'s':>6}"
    )
    for r in rows:
        agree = float((r["classes"] == ref["classes"]).mean())
        print(
            f"{r['name']:<22} {r['mode']:<16} {agree:7.4f} {r['oa']:7.4f} {r['miou']:7.4f} "
            f"{r['oa'] - ref['oa']:+7.4f} {r['seconds']:6.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

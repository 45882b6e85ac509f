"""Training benchmark on real data: train from a config, then map the held-out pixels through
the engine and score them (rows of the confusion matrix = map, columns = reference).

    python benchmarks/train.py examples/train/nc.yaml --evaluate val
    python benchmarks/train.py examples/train/dubai.yaml --evaluate test
    python benchmarks/train.py CONFIG --evaluate test --skip-training   # score an existing bundle
    python benchmarks/train.py CONFIG --skip-training --tta flips      # ... with test-time views
    python benchmarks/train.py CONFIG --skip-training --normalize scene,match  # radiometry modes
    python benchmarks/train.py CONFIG --epochs 20     # a shorter schedule than the config's
    python benchmarks/train.py CONFIG --precision bf16  # training precision (bundle: <output>-bf16)

Prints the figures as a Markdown fragment (for BENCHMARKS.md) and writes them as JSON to
bench-output/train/<config name>[-tta-<views>].json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "train"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument(
        "--evaluate",
        choices=["val", "test"],
        default="test",
        help="held-out pixels to map: validation (split/val scenes) or test scenes",
    )
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep <output>.checkpoint once training ends (a later --resume --epochs N goes on)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--block",
        type=int,
        default=1024,
        help="engine block (several per scene keep both workers busy)",
    )
    ap.add_argument(
        "--tta",
        choices=["none", "flips", "d4"],
        default="none",
        help="test-time augmentation of the held-out maps",
    )
    ap.add_argument(
        "--normalize",
        default="bundle",
        help="comma-separated --normalize modes to map the held-out scenes in (each scored)",
    )
    ap.add_argument("--epochs", type=int, help="train for this many epochs instead")
    ap.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help="training precision; the bundle goes to <output>-<precision>",
    )
    args = ap.parse_args()

    from geoseg.model.bundle import read_meta
    from geoseg.train.config import load_config
    from geoseg.train.heldout import evaluate_heldout
    from geoseg.train.train import train

    cfg = load_config(args.config)
    if args.epochs:
        cfg = cfg.model_copy(
            update={"training": cfg.training.model_copy(update={"epochs": args.epochs})}
        )
    if args.precision:
        cfg = cfg.model_copy(update={"output": f"{cfg.output}-{args.precision}"})
    stem = Path(args.config).stem + ("" if args.tta == "none" else f"-tta-{args.tta}")
    stem += f"-{args.precision}" if args.precision else ""
    OUT.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    if not args.skip_training:
        train(
            cfg,
            resume=args.resume,
            progress=True,
            precision=args.precision,
            keep_checkpoint=args.keep_checkpoint or None,
        )
    train_s = time.perf_counter() - t
    meta = read_meta(cfg.output)
    prov = meta.provenance
    for mode in args.normalize.split(","):
        ev = evaluate_heldout(
            cfg,
            cfg.output,
            OUT / f"{stem}-maps",
            roles=(args.evaluate,),
            workers=args.workers,
            block=args.block,
            tta=args.tta,
            normalize=mode,
        )
        s = ev.summary()
        result = {
            "config": args.config,
            "held_out": args.evaluate,
            "tta": args.tta,
            "normalize": mode,
            "training_normalize": meta.normalization.mode,
            "engine": s,
            "train_seconds_this_run": round(train_s, 1),
            "train_loop_seconds": prov.get("wall_seconds"),
            "epochs": prov.get("epochs"),
            "best_epoch": prov.get("best_epoch"),
            "best_val_miou": prov.get("best_val_miou"),
            "best_val_oa": prov.get("best_val_oa"),
            "training_precision": prov.get("precision", "fp32"),
            "architecture": f"{meta.architecture}/{meta.encoder}",
            "weights_mb": round(
                (Path(cfg.output) / "weights.safetensors").stat().st_size / 2**20, 1
            ),
            "machine": f"{platform.machine()}, {_cores()} cores",
        }
        suffix = "" if mode == "bundle" else f"-normalize-{mode}"
        (OUT / f"{stem}{suffix}.json").write_text(json.dumps(result, indent=2))
        print(
            f"\n{args.config}: {result['architecture']}, {result['epochs']} epochs (best "
            f"{result['best_epoch']}), training loop {result['train_loop_seconds']} s"
        )
        print(
            f"validation during training: OA {result['best_val_oa']:.3f}, "
            f"mIoU {result['best_val_miou']:.3f}"
        )
        print(
            f"held-out ({args.evaluate}, --normalize {mode}) through the engine: {s['pixels']} px, "
            f"OA {s['oa']:.3f}, "
            f"mIoU {s['miou']:.3f}; prediction {s['megapixels']:.1f} Mpx in "
            f"{s['predict_seconds']:.1f} s\n"
        )
        print("| class | IoU |\n|---|---|")
        for name, v in s["iou"].items():
            print(f"| {name} | {v:.3f} |")
    return 0


def _cores() -> int:
    from geoseg.cluster.setup import usable_cores

    return usable_cores()


if __name__ == "__main__":
    sys.exit(main())

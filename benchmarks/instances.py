"""Instances of the thing classes: panoptic quality of each method's maps, block invariance on
real images, and the cost of the instance stage next to prediction.

Dubai tile 8 (the 9 test images), Building as the thing class; the reference's instances are
the connected components of the human Building label (4-connected), as the PQ rows say; with
``--reference-min-pixels`` N the components below N px are void (neither to find nor false
positives: half of them are 1-4 px colour-fringe specks of the label PNGs). The
maps are those the other benchmarks wrote (run them first):

    python benchmarks/train.py examples/train/dubai-lite0.yaml --evaluate test   # deep maps
    python benchmarks/train.py examples/train/dubai-lite0-boundary.yaml --evaluate test
    python benchmarks/train.py examples/train/dubai-unet-lite0-boundary.yaml --evaluate test
    python benchmarks/train.py examples/train/dubai-maskrcnn-lite0.yaml --evaluate test
    python benchmarks/compare.py --only dubai                                    # OBIA, RF
    python benchmarks/instances.py

The reference rasters (tile 8's held-out labels, ``geoseg baseline heldout``) are written
here when ``--reference`` holds none. Methods whose maps are missing are skipped.

A map with a border head beside it (``<map>_boundary.tif``, the boundary recipe's) is scored
with its objects split along the border (each threshold of ``--thresholds``) and without.
Prints per method the pooled PQ, SQ, RQ (= F1 at IoU 0.5), precision, recall and the count
error over the 9 images; then, on the largest image, the instance ids for block sizes 64 and
4096 (equal, or the script fails) and the seconds of the instance stage against predicting
the same image with the lite0 bundle. Writes bench-output/instances/summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench-output" / "instances"
BO = ROOT / "bench-output"
LITE0, BOUNDARY = BO / "train" / "dubai-lite0", BO / "train" / "dubai-lite0-boundary"
DEFAULT_MAPS = [
    f"MaskRCNN-lite0={BO / 'train' / 'dubai-maskrcnn-lite0-maps'}",
    f"UNet-lite0-boundary={BO / 'train' / 'dubai-unet-lite0-boundary-maps'}",
    f"DeepLabV3+-lite0={BO / 'train' / 'dubai-lite0-maps'}",
    f"DeepLabV3+-lite0-boundary={BO / 'train' / 'dubai-lite0-boundary-maps'}",
    f"OBIA={BO / 'baseline' / 'dubai' / 'obia'}",
    f"pixel-RF={BO / 'baseline' / 'dubai' / 'pixel-rf'}",
]


def pooled(reports: list[dict], name: str) -> dict:
    """One thing class's figures over several images (sums of TP, FP, FN and matched IoU)."""
    rows = [r["things"][name] for r in reports]
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    iou = sum(r["sq"] * r["tp"] for r in rows)
    sq = iou / tp if tp else 0.0
    rq = tp / (tp + fp / 2 + fn / 2) if tp + fp + fn else 0.0
    count, ref = sum(r["count"] for r in rows), sum(r["reference"] for r in rows)
    return {
        "pq": round(sq * rq, 4),
        "sq": round(sq, 4),
        "rq_f1": round(rq, 4),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "count": count,
        "reference": ref,
        "count_error": round((count - ref) / ref, 4) if ref else None,
    }


def _unet_lite0() -> Path:
    """The per-pixel route's network (U-Net on lite0, the boundary recipe's decoder) with
    untrained weights: its speed does not depend on them."""
    from geoseg.model.factory import create_bundle

    path = OUT / "unet-lite0-untrained"
    if not path.exists():
        create_bundle(
            path,
            classes=ROOT / "examples" / "train" / "dubai-classes-things.json",
            bands=3,
            architecture="unet",
            encoder="tu-tf_efficientnet_lite0",
            arch_kwargs={"decoder_channels": [128, 64, 32, 24, 16]},
            mean=[123.7, 116.3, 103.5],
            std=[58.4, 57.1, 57.4],
        )
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maps", action="append", help="LABEL=FOLDER of class maps (repeatable)")
    ap.add_argument("--reference", default=str(BO / "baseline" / "dubai" / "heldout"))
    ap.add_argument("--things", default="Building")
    ap.add_argument(
        "--bundle",
        help="bundle timed against the instance stage (default: the "
        "boundary recipe's when its maps are scored, else lite0's)",
    )
    ap.add_argument(
        "--time-bundle",
        action="append",
        default=[],
        help="LABEL=BUNDLE to time on the largest image, warm (repeatable; default: --bundle)",
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--thresholds", default="0.5", help="border thresholds to try (split maps)")
    ap.add_argument("--grow", type=int, default=3, help="pixels objects grow back (split maps)")
    ap.add_argument(
        "--min-pixels", default="1,100", help="instance sizes to try (map objects below: no id)"
    )
    ap.add_argument(
        "--reference-min-pixels",
        default="1,20",
        help="reference instance sizes to try (components below: void; half of tile 8's "
        "Building components are 1-4 px colour-fringe specks of the label PNGs)",
    )
    args = ap.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message=".*no CRS or geotransform.*")
    from geoseg.cluster.setup import ClusterOptions, connect
    from geoseg.engine.predict import predict
    from geoseg.instances.evaluate import evaluate_instances
    from geoseg.instances.label import instances

    refs = sorted(Path(args.reference).glob("*.tif"))
    if not refs:
        from geoseg.baseline.heldout import write_heldout_reference

        config = ROOT / "examples" / "baseline" / "dubai.yaml"
        refs = sorted(write_heldout_reference(config, Path(args.reference), overwrite=True))
    things = [t.strip() for t in args.things.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    summary: dict = {"reference": args.reference, "images": len(refs), "methods": {}}
    with connect(ClusterOptions(workers=args.workers)) as c:
        runs = []
        for spec in args.maps or DEFAULT_MAPS:
            label, folder = spec.split("=", 1)
            if not any(Path(folder).glob("*.tif")):
                print(f"{label}: no maps in {folder}, skipped")
                continue
            split = any(Path(folder).glob("*_boundary.tif"))
            for rmp in [int(v) for v in args.reference_min_pixels.split(",")]:
                for mp in [int(v) for v in args.min_pixels.split(",")]:
                    runs.append((label, folder, mp, rmp, None))
                    if split:
                        thr = [float(t) for t in args.thresholds.split(",")]
                        runs += [(label, folder, mp, rmp, t) for t in thr]
        for label, folder, mp, rmp, thr in runs:
            kw = {"split": False} if thr is None else {"border_threshold": thr}
            name = label if thr is None else f"{label} split@{thr:g}"
            reports, t0 = [], time.perf_counter()
            for ref in refs:
                m = Path(folder) / ref.name
                if not m.exists():
                    print(f"{label}: {m} missing, skipped")
                    break
                reports.append(
                    evaluate_instances(
                        m,
                        ref,
                        OUT / name / ref.stem,
                        things=things,
                        min_pixels=mp,
                        reference_min_pixels=rmp,
                        grow=args.grow,
                        **kw,
                        client=c,
                        overwrite=True,
                    )
                )
            else:
                row = {t: pooled(reports, t) for t in things}
                row["seconds"] = round(time.perf_counter() - t0, 1)
                summary["methods"][f"{name} min_pixels={mp} reference_min_pixels={rmp}"] = row
                for t in things:
                    r = row[t]
                    print(
                        f"{name:30s} >={mp:<4d}px ref>={rmp:<3d}px {t}: PQ {r['pq']:.3f}  "
                        f"SQ {r['sq']:.3f}  "
                        f"RQ=F1@0.5 {r['rq_f1']:.3f}  P {r['precision']:.3f}  "
                        f"R {r['recall']:.3f}  count {r['count']} / {r['reference']} "
                        f"({r['count_error']:+.1%})"
                    )
        # block invariance and cost, on the largest image of the first method with a border
        # head (split objects: the seams and the halo are both exercised), else the first
        specs = [s.split("=", 1) for s in args.maps or DEFAULT_MAPS]
        specs = [s for s in specs if any(Path(s[1]).glob("*.tif"))]
        split_specs = [s for s in specs if any(Path(s[1]).glob("*_boundary.tif"))]
        label, folder = (split_specs or specs)[0]
        bundle = Path(args.bundle or (BOUNDARY if split_specs else LITE0))
        big = max(refs, key=lambda p: rasterio.open(p).width * rasterio.open(p).height)
        m = Path(folder) / big.name
        ids = {}
        for block in (64, 4096):
            t = time.perf_counter()
            res = instances(
                m, OUT / f"ids_b{block}.tif", things=things, block=block, client=c, overwrite=True
            )
            secs = time.perf_counter() - t
            with rasterio.open(res.path) as src:
                ids[block] = (src.read(1), res.blocks, secs, res.total)
        same = np.array_equal(ids[64][0], ids[4096][0])
        with rasterio.open(m) as src:
            mpx = src.width * src.height / 1e6
        summary["block_invariance"] = {
            "image": big.name,
            "megapixels": round(mpx, 2),
            "method": label,
            "blocks": [ids[64][1], ids[4096][1]],
            "instances": [ids[64][3], ids[4096][3]],
            "identical": bool(same),
        }
        print(
            f"{big.name}: {ids[64][3]} instances with {ids[64][1]} blocks of 64 px, "
            f"{ids[4096][3]} with {ids[4096][1]} block: ids identical = {same}"
        )
        timed = [b.split("=", 1) for b in args.time_bundle] or [
            ["Mask R-CNN lite0", str(BO / "train" / "dubai-maskrcnn-lite0")],
            ["U-Net lite0 (untrained weights: speed only)", str(_unet_lite0())],
            ["bundle", str(bundle)],
        ]
        scene = ROOT.parent / "shared" / "data" / "dubai" / "tile8" / big.name.split("_", 2)[2]
        scene = scene.with_suffix(".jpg")
        inst_s = ids[4096][2]
        summary["cost"] = {"image": big.name, "megapixels": round(mpx, 2), "instances_s": inst_s}
        for name, path in timed:
            if not Path(path).exists():
                print(f"{name}: no bundle at {path}, not timed")
                continue
            # a first run loads the model on the workers; the second is timed
            predict(scene, path, OUT / "predicted.tif", client=c, overwrite=True)
            t = time.perf_counter()
            predict(scene, path, OUT / "predicted.tif", client=c, overwrite=True)
            pred_s = time.perf_counter() - t
            summary["cost"][name] = {
                "predict_s": round(pred_s, 2),
                "mpx_per_s": round(mpx / pred_s, 3),
                "throughput_ratio_with_instances": round(pred_s / (pred_s + inst_s), 3),
            }
            print(
                f"{name}: predict {pred_s:.1f} s ({mpx / pred_s:.2f} Mpx/s), instances "
                f"{inst_s:.1f} s: with instances at {pred_s / (pred_s + inst_s):.2f}x the "
                "semantic-only throughput"
            )
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {OUT / 'summary.json'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

"""Change detection on real NAIP imagery (Minnesota, 2009 vs 2020) with index-rule classes.

    python benchmarks/change.py                      # 2009-08-18 vs 2020-08-31, 2 workers
    python benchmarks/change.py --before naip_2010-06-29.tif --after naip_2019-09-04.tif

There is no trained NAIP model, so each date is classified by a fixed, documented index rule
(no training), written as geoseg class COGs with ``_probabilities.tif`` siblings, and
``geoseg.change.change`` runs on those exactly as on a model's outputs:

* NDVI = (NIR - red) / (NIR + red), bands 4 and 1 of NAIP (R, G, B, NIR, uint8);
* memberships from each threshold's margin, logistic with a soft width:
  p(water) = s(-NDVI / 0.05) * s((80 - NIR) / 10)  (water: NDVI < 0 and NIR < 80),
  p(vegetation) = (1 - p(water)) * s((NDVI - 0.15) / 0.05)  (vegetation: NDVI >= 0.15),
  p(bare / built) = (1 - p(water)) * (1 - s((NDVI - 0.15) / 0.05)), s = logistic;
* class = the largest membership; the three memberships sum to 1 and are stored as geoseg's
  uint8 probabilities (value / 254). A pixel 0.04 NDVI past the vegetation threshold has
  p = 0.69, just below the default 0.7 gate; one 0.1 past has 0.88.

The dates' grids differ (2020 is 1 m west and 1 m south of 2009, and one row shorter): the
change runs on the 2009 grid cropped to the common footprint, 2020 warped onto it block by
block with nearest neighbour. NAIP radiometry is not calibrated between years, so a fixed
rule gives some spurious change where a field sits near a threshold; the gate flags those.
The cluster (2 workers) is started first; "change" is the time of ``geoseg.change.change`` alone.

``--pif`` also runs the same change with the later date first fitted onto the earlier one's
radiometry (``geoseg.harmonize``: one gain and offset per band from pseudo-invariant pixels),
and prints the changed and gated areas of both runs side by side.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "naip_mn"
OUT = ROOT / "bench-output" / "change"
CLASSES = [
    {"id": 1, "name": "Water", "color": "#1f78b4"},
    {"id": 2, "name": "Vegetation", "color": "#33a02c"},
    {"id": 3, "name": "Bare / built", "color": "#b15928"},
]
STRIP = 256


def _s(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def memberships(bands: np.ndarray) -> np.ndarray:
    """(3, h, w) memberships of water, vegetation, bare/built from NAIP R, G, B, NIR."""
    red, nir = bands[0].astype(np.float64), bands[3].astype(np.float64)
    ndvi = (nir - red) / np.maximum(nir + red, 1.0)
    water = _s(-ndvi / 0.05) * _s((80.0 - nir) / 10.0)
    veg = _s((ndvi - 0.15) / 0.05)
    return np.stack([water, (1 - water) * veg, (1 - water) * (1 - veg)])


def classify(scene: Path, out_dir: Path) -> Path:
    """Write the index-rule class COG and its probabilities for one NAIP date."""
    import rasterio
    from rasterio.windows import Window as RioWindow

    from geoseg.core.classes import load_classes
    from geoseg.core.grid import Window
    from geoseg.io.cog import CogWriter, RasterSpec

    classes = load_classes(CLASSES)
    out = out_dir / scene.name
    with rasterio.open(scene) as src:
        base = dict(
            height=src.height,
            width=src.width,
            crs=src.crs,
            transform=src.transform,
            tags={"GEOSEG_MODEL": "ndvi-rule 1", "GEOSEG_SOURCE": str(scene)},
        )
        cls_w = CogWriter(
            RasterSpec(count=1, nodata=0, classes=classes, **base), out_dir / "scratch", "cls"
        )
        prob_w = CogWriter(
            RasterSpec(
                count=3,
                nodata=255,
                scales=[1 / 254] * 3,
                descriptions=[f"p({c['name']})" for c in CLASSES],
                **base,
            ),
            out_dir / "scratch",
            "probs",
        )
        for r0 in range(0, src.height, STRIP):
            h = min(STRIP, src.height - r0)
            rw = RioWindow(0, r0, src.width, h)
            valid = src.dataset_mask(window=rw) > 0
            m = memberships(src.read(window=rw))
            cls = np.where(valid, m.argmax(axis=0) + 1, 0).astype(np.uint8)
            probs = np.where(valid, np.rint(m * 254), 255).astype(np.uint8)
            win = Window(r0, 0, h, src.width)
            cls_w.write(win, cls)
            prob_w.write(win, probs)
    cls_w.finish(out)
    prob_w.finish(out.with_name(f"{out.stem}_probabilities.tif"), resampling="AVERAGE")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="naip_2009-08-18.tif")
    ap.add_argument("--after", default="naip_2020-08-31.tif")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--mmu", type=float, default=0.1, help="hectares (NAIP 5 m: 40 pixels)")
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--pif", action="store_true", help="also with the later date harmonized")
    args = ap.parse_args()

    from geoseg.change.change import change
    from geoseg.cluster.setup import ClusterOptions, connect

    t0 = time.perf_counter()
    classes_dir = args.out / "classes"
    classes_dir.mkdir(parents=True, exist_ok=True)
    maps = [classify(DATA / name, classes_dir) for name in (args.before, args.after)]
    t_rule = time.perf_counter() - t0
    with connect(ClusterOptions(workers=args.workers)) as client:
        t1 = time.perf_counter()
        res = change(
            maps[0],
            maps[1],
            args.out / "result",
            threshold=args.threshold,
            mmu=args.mmu,
            client=client,
            block=args.block,
            overwrite=True,
        )
        t_change = time.perf_counter() - t1
        if args.pif:
            pif = _with_pif(args, client, classes_dir)
    r = res.report
    names = [c["name"] for c in r["classes"]]
    print(
        f"index-rule classes: {t_rule:.2f} s; change: {t_change:.2f} s "
        f"({r['run']['blocks']} blocks, {r['run']['megapixels']:.3f} Mpx)"
    )
    print(
        f"grid: {r['grid']['width']} x {r['grid']['height']} px, {r['grid']['crs']}; "
        f"after: {r['after']['read']}"
    )
    print("transitions (ha), rows = 2009, columns = 2020:")
    print("from \\ to".ljust(14) + "".join(n[:12].rjust(14) for n in names))
    for n, row in zip(names, r["transitions"]["matrix_ha"], strict=True):
        print(n[:12].ljust(14) + "".join(f"{v:14.2f}" for v in row))
    a, px = r["area_ha"], r["pixels"]
    print(
        f"changed {a['changed']:.2f} ha ({px['changed']} px), uncertain (gated) "
        f"{a['uncertain']:.2f} ha ({px['uncertain']} px) of {a['compared']:.2f} ha; "
        f"{r['polygons']['polygons']} polygons >= {args.mmu} ha covering "
        f"{r['polygons']['area_ha']:.2f} ha"
    )
    for c in r["components"]["all"]["per_class"]:
        print(
            f"  {c['name']:<14} gain {c['gain_ha']:8.2f}  loss {c['loss_ha']:8.2f}  net "
            f"{c['net_ha']:8.2f}  swap {c['swap_ha']:8.2f}  persistence "
            f"{c['persistence_ha']:8.2f} ha"
        )
    print(
        "gate sensitivity:",
        ", ".join(f"{s['threshold']}: {s['changed_ha']:.1f} ha" for s in r["gate"]["sensitivity"]),
    )
    if args.pif:
        h, rp = pif
        fits = ", ".join(f"{b['gain']:.3f} x + {b['offset']:.1f}" for b in h.report["bands"])
        print(
            f"PIF fit of {args.after} onto {args.before}: {h.report['pif_pixels']} of "
            f"{h.report['sampled_pixels']} sampled pixels, {h.report['iterations']} "
            f"iterations, {h.seconds:.1f} s; per band (R, G, B, NIR): {fits}"
        )
        for name, rr in (("without PIF", r), ("with PIF", rp)):
            a = rr["area_ha"]
            print(
                f"  {name:<12} changed {a['changed']:8.2f} ha, uncertain {a['uncertain']:8.2f} "
                f"ha ({a['uncertain'] / a['compared']:.1%} of {a['compared']:.2f} ha gated)"
            )
    (args.out / "summary.json").write_text(
        json.dumps(
            {
                "seconds_rule": t_rule,
                "seconds_change": t_change,
                "report": str(res.outputs["report_json"]),
            },
            indent=2,
        )
    )


def _with_pif(args, client, classes_dir: Path):
    """The later date harmonized onto the earlier, classified, and the change redone."""
    from geoseg.change.change import change
    from geoseg.harmonize.harmonize import harmonize

    pif_dir = args.out / "pif"
    h = harmonize(
        DATA / args.after,
        DATA / args.before,
        pif_dir / args.after,
        client=client,
        overwrite=True,
    )
    after = classify(Path(h.path), pif_dir)
    res = change(
        classes_dir / args.before,
        after,
        args.out / "result-pif",
        threshold=args.threshold,
        mmu=args.mmu,
        client=client,
        block=args.block,
        overwrite=True,
    )
    return h, res.report


if __name__ == "__main__":
    main()

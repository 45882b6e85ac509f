"""OBIA, pixel random forest and Otsu baselines against DeepLabV3+ on real data (issue 6).

For NC and Zion (west half trains, east half held out, as examples/train/{nc,zion}.yaml) and
Dubai (tiles 1-6 train, test tile 8, as examples/train/dubai.yaml):

1. the baselines of examples/baseline/<name>.yaml: OBIA, pixel random forest; Otsu on NDWI
   (water) where the bands have NIR;
2. the held-out labels as a reference raster per mapped scene (geoseg baseline heldout);
3. the DeepLabV3+ bundle trained from examples/train/<name>.yaml (its `output`), if it
   exists: the held-out maps benchmarks/train.py wrote (bench-output/train/<name>-maps), else
   the scenes are predicted through the engine here;
4. geoseg compare of the maps on the held-out pixels (pooled over Dubai's 9 test images:
   confusion matrices and McNemar counts add up); Otsu is compared on the water / not-water
   task, with the other maps reduced to it;
5. NC only: a sweep of the SLIC superpixel size.

    python benchmarks/compare.py                       # everything (~15-25 min on 2 cores)
    python benchmarks/compare.py --only nc --sweep     # NC with the sweep
    python benchmarks/compare.py --reuse               # baselines kept, comparison redone
    python benchmarks/compare.py --only dubai --reuse \
        --deep "lite0=examples/train/{name}-lite0.yaml" --deep "random=examples/train/{name}.yaml"

``--deep LABEL=CONFIG`` (repeatable) names the deep models to compare, each by the training
config whose bundle and held-out maps to use, ``{name}`` standing for the data set (default:
the baseline's own training config, labelled DeepLabV3+); a config whose bundle is missing is
reported as pending.

Writes bench-output/baseline/<name>/..., bench-output/baseline/benchmark.json, and prints the
Markdown tables of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output" / "baseline"
SETS = {  # name: (baseline config, NDWI bands for Otsu or None, water class id)
    "nc": ("examples/baseline/nc.yaml", "green=2,nir=4", 6),
    "zion": ("examples/baseline/zion.yaml", "green=2,nir=4", 1),
    "dubai": ("examples/baseline/dubai.yaml", None, 5),
}
SWEEP = [4, 6, 8, 12]  # NC: SLIC superpixel side in pixels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="nc,zion,dubai")
    ap.add_argument("--sweep", action="store_true", help="NC: SLIC size sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--deep",
        action="append",
        default=[],
        help="LABEL=TRAINING_CONFIG of a deep model to compare (repeatable)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep the baselines of an earlier "
        "run (their maps and timings) and redo only the comparison",
    )
    args = ap.parse_args()
    from geoseg.cluster.setup import ClusterOptions, connect

    results = _load()
    with connect(ClusterOptions(workers=args.workers)) as client:
        for name in args.only.split(","):
            deep = dict(d.split("=", 1) for d in args.deep)
            earlier = results.get(name) if args.reuse else None
            results[name] = run_set(name, client, earlier, deep)
            _save(results)
        if args.sweep:
            results["nc_sweep"] = sweep(client)
            _save(results)
    print_tables(results)
    return 0


def run_set(name: str, client, earlier: dict | None = None, deep: dict | None = None) -> dict:
    from geoseg.baseline.heldout import write_heldout_reference
    from geoseg.baseline.obia import run_obia
    from geoseg.baseline.pixel import run_pixel_rf

    config, otsu_bands, water = SETS[name]
    out = OUT / name
    res = {"config": config}
    refs = write_heldout_reference(ROOT / config, out / "heldout", overwrite=True)
    if earlier:  # --reuse: the maps are named like the references
        res.update(obia=earlier["obia"], pixel_rf=earlier["pixel_rf"])
        maps = {
            "OBIA": [out / "obia" / r.name for r in refs],
            "pixel-RF": [out / "pixel-rf" / r.name for r in refs],
        }
    else:
        obia = run_obia(ROOT / config, out / "obia", client=client, overwrite=True)
        res["obia"] = {"seconds": obia.seconds, "report": _brief(obia.report)}
        pixel = run_pixel_rf(ROOT / config, out / "pixel-rf", client=client, overwrite=True)
        res["pixel_rf"] = {"seconds": pixel.seconds}
        maps = {"OBIA": obia.map_paths, "pixel-RF": pixel.map_paths}
    res["deeplab"] = {}
    for label, train_config in reversed(list((deep or {"DeepLabV3+": None}).items())):
        train_config = train_config and train_config.format(name=name)
        d = deeplab_maps(name, config, refs, out, client, train_config, label)
        if d:
            maps = {label: d["maps"], **maps}
            res["deeplab"][label] = {k: v for k, v in d.items() if k != "maps"}
    res["compare"] = pooled_compare(maps, refs, out / "compare", client)
    if otsu_bands:
        res["otsu"] = otsu_task(name, otsu_bands, water, maps, refs, out, client)
    return res


def deeplab_maps(
    name, config, refs, out, client, train_config=None, label="DeepLabV3+"
) -> dict | None:
    """A deep model's maps of the mapped scenes (from benchmarks/train.py, else predicted):
    the bundle of ``train_config`` (default: the baseline's training config)."""
    from geoseg.baseline.config import load_baseline
    from geoseg.engine.predict import predict
    from geoseg.model.bundle import read_meta
    from geoseg.train.config import load_config

    b = load_baseline(ROOT / config)
    if train_config:
        bundle, stem = Path(load_config(ROOT / train_config).output), Path(train_config).stem
    else:
        bundle, stem = Path(b.train.output), Path(b.cfg.train_config).stem
    if not (bundle / "bundle.json").exists():
        print(f"{name}: no bundle for {label} at {bundle} yet: comparison pending")
        return None
    meta = read_meta(bundle)
    made = ROOT / "bench-output" / "train" / f"{stem}-maps"
    maps, seconds = [], 0.0
    for ref in refs:
        path = made / ref.name
        if not path.exists() or path.stat().st_mtime < (bundle / "bundle.json").stat().st_mtime:
            from geoseg.baseline.scenes import plan

            scene = next(s for s in plan(b).mapped if ref.name.startswith(f"{s.index:03d}_"))
            path = out / "deeplab" / stem / ref.name
            r = predict(
                scene.scene,
                str(bundle),
                path,
                client=client,
                block=1024,
                normalize="bundle",
                overwrite=True,
            )
            seconds += r.seconds
        maps.append(path)
    prov = meta.provenance or {}
    bench = ROOT / "bench-output" / "train" / f"{stem}.json"  # benchmarks/train.py's figures
    if not seconds and bench.exists():
        seconds = json.loads(bench.read_text())["engine"]["predict_seconds"]
    return {
        "maps": maps,
        "bundle": str(bundle),
        "architecture": f"{meta.architecture}/{meta.encoder}",
        "train_seconds": prov.get("wall_seconds"),
        "epochs": prov.get("epochs"),
        "best_epoch": prov.get("best_epoch"),
        "predict_seconds": seconds,
    }


def pooled_compare(maps: dict[str, list[Path]], refs: list[Path], out: Path, client) -> dict:
    """geoseg compare per mapped scene; matrices and McNemar counts pooled over scenes."""
    from geoseg.compare.compare import compare
    from geoseg.core import metrics as mx

    names = list(maps)
    reps = []
    t = time.perf_counter()
    for k, ref in enumerate(refs):
        dest = out if len(refs) == 1 else out / ref.stem
        reps.append(
            compare(
                [maps[n][k] for n in names], ref, dest, names=names, client=client, overwrite=True
            )
        )
    seconds = time.perf_counter() - t
    classes = [c["name"] for c in reps[0]["classes"]]
    per_map = {}
    for i, n in enumerate(names):
        cm = sum(np.asarray(r["per_map"][i]["confusion_matrix"]) for r in reps)
        a = mx.accuracy(cm)
        per_map[n] = {
            "oa": a.oa,
            "miou": a.miou,
            "kappa": a.kappa,
            "f1": dict(zip(classes, a.f1.tolist(), strict=True)),
            "iou": dict(zip(classes, a.iou.tolist(), strict=True)),
            "confusion_matrix": cm.tolist(),  # rows: map, columns: reference
        }
    pairs = []
    for j, p in enumerate(reps[0]["pairs"]):
        c = [
            sum(r["pairs"][j]["mcnemar"][k] for r in reps)
            for k in ("both_right", "a_only", "b_only", "both_wrong")
        ]
        t_ = mx.mcnemar(*c)
        pairs.append(
            {
                "a": p["a"],
                "b": p["b"],
                "counts": c,
                "z": t_.z,
                "p": t_.p,
                "p_exact": t_.p_exact,
                "oa_difference": per_map[p["a"]]["oa"] - per_map[p["b"]]["oa"],
            }
        )
    return {
        "pixels": sum(r["compared"] for r in reps),
        "scenes": len(refs),
        "per_map": per_map,
        "pairs": pairs,
        "compare_seconds": seconds,
        "reports": [str(Path(r["files"]["compare_json"])) for r in reps],
    }


def otsu_task(name, bands, water, maps, refs, out, client) -> dict:
    """Otsu on NDWI against the other maps reduced to water / not water."""
    from geoseg.baseline.config import load_baseline
    from geoseg.baseline.otsu import run_otsu
    from geoseg.baseline.scenes import plan

    b = load_baseline(ROOT / SETS[name][0])
    (scene,) = [s for s in plan(b).mapped]
    otsu = run_otsu(
        list(scene.scene.paths) if len(scene.scene.paths) > 1 else scene.scene.paths[0],
        out / "otsu.tif",
        index="ndwi",
        bands=bands,
        client=client,
        overwrite=True,
    )
    binary = {"Otsu-NDWI": [otsu.map_path]}
    for n, paths in maps.items():
        binary[n] = [water_map(paths[0], water, out / "water" / f"{n}.tif")]
    ref = water_map(refs[0], water, out / "water" / "reference.tif")
    res = pooled_compare(binary, [ref], out / "compare-water", client)
    res.update(seconds=otsu.seconds, threshold=otsu.report["threshold"])
    return res


def water_map(src: Path, water: int, dst: Path) -> Path:
    """A class map reduced to 1 = water (class ``water``), 2 = not water, like Otsu's."""
    import rasterio

    from geoseg.core.classes import load_classes
    from geoseg.core.grid import Window
    from geoseg.io.cog import CogWriter, RasterSpec

    classes = load_classes(
        [
            {"id": 1, "name": "Water", "color": "#2b83ba"},
            {"id": 2, "name": "Not water", "color": "#d9d9d9"},
        ]
    )
    with rasterio.open(src) as s:
        a, nodata = s.read(1), s.nodata
        spec = RasterSpec(s.height, s.width, 1, s.crs, s.transform, nodata=0, classes=classes)
    out = np.where(a == water, 1, 2).astype(np.uint8)
    out[a == nodata] = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    w = CogWriter(spec, dst.parent / ".scratch")
    w.write(Window(0, 0, *a.shape), out)
    return w.finish(dst)


def sweep(client) -> list[dict]:
    """NC: OBIA at several SLIC sizes, scored together on the east half."""
    from geoseg.baseline.config import load_baseline
    from geoseg.baseline.obia import run_obia

    b = load_baseline(ROOT / SETS["nc"][0])
    refs = sorted((OUT / "nc" / "heldout").glob("*.tif"))
    rows, maps = [], {}
    for size in SWEEP:
        seg = b.cfg.segmentation.model_copy(update={"size": float(size)})
        cfg = b.cfg.model_copy(update={"segmentation": seg})
        r = run_obia(cfg, OUT / "nc" / "sweep" / f"slic{size}.tif", client=client, overwrite=True)
        maps[f"slic{size}"] = [r.map_path]
        o = r.report["objects"]
        rows.append(
            {
                "size": size,
                "objects": o["mapped"],
                "mean_size_px": o["mean_size_px"],
                "training_objects": o["training"],
                "seconds": r.seconds,
                "ceiling_oa": r.report["segmentation_ceiling"]["oa"],
            }
        )
    cmp = pooled_compare(maps, refs, OUT / "nc" / "sweep" / "compare", client)
    for row in rows:
        row.update(
            oa=cmp["per_map"][f"slic{row['size']}"]["oa"],
            miou=cmp["per_map"][f"slic{row['size']}"]["miou"],
        )
    return rows


def _p(p: float) -> str:
    return "< 1e-300" if p == 0 else f"{p:.2g}"


def _brief(rep: dict) -> dict:
    return {
        k: rep[k]
        for k in (
            "segmentation",
            "features",
            "classifier",
            "objects",
            "segmentation_ceiling",
            "seconds",
            "block",
            "halo",
        )
    }


def _load() -> dict:
    p = OUT / "benchmark.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save(results: dict) -> None:
    from geoseg.io.files import clean

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "benchmark.json").write_text(json.dumps(clean(results), indent=2, default=str))


def _confusions(matrix: list, classes: list[str], top: int = 4) -> str:
    cm = np.asarray(matrix, dtype=np.float64)
    off = cm / cm.sum()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    return ", ".join(
        f"{classes[j]} -> {classes[i]} {off[i, j]:.1%}"
        for i, j in (np.unravel_index(k, off.shape) for k in order)
    )


def print_tables(results: dict) -> None:
    for name in SETS:
        r = results.get(name)
        if not r:
            continue
        c = r["compare"]
        print(f"\n### {name}: {c['pixels']:,} held-out pixels ({c['scenes']} scene(s))\n")
        classes = list(next(iter(c["per_map"].values()))["f1"])
        print(
            "| method | OA | mIoU | "
            + " | ".join(f"F1 {k}" for k in classes)
            + " | wall time (s) |"
        )
        print("|---" * (len(classes) + 4) + "|")
        times = {"OBIA": r["obia"]["seconds"], "pixel-RF": r["pixel_rf"]["seconds"]}
        deep = r.get("deeplab", {})
        if "train_seconds" in deep:  # written before --deep: one model, labelled DeepLabV3+
            deep = {"DeepLabV3+": deep}
        for label, d in deep.items():
            times[label] = f"train {d['train_seconds']:.0f} + predict {d['predict_seconds']:.1f}"
        for m, v in c["per_map"].items():
            f1 = " | ".join("-" if v["f1"][k] is None else f"{v['f1'][k]:.3f}" for k in classes)
            t = times.get(m)
            print(
                f"| {m} | {v['oa']:.3f} | {v['miou']:.3f} | {f1} | "
                f"{t if isinstance(t, str) else f'{t:.1f}'} |"
            )
        print("\nlargest confusions (reference -> map, share of the held-out pixels):")
        for m, v in c["per_map"].items():
            if "confusion_matrix" in v:
                print(f"- {m}: {_confusions(v['confusion_matrix'], classes)}")
        print("\n| pair | OA difference | only A right | only B right | McNemar z | p |")
        print("|---|---|---|---|---|---|")
        for p in c["pairs"]:
            print(
                f"| {p['a']} vs {p['b']} | {p['oa_difference']:+.3f} | {p['counts'][1]:,} | "
                f"{p['counts'][2]:,} | {p['z']:.1f} | {_p(p['p'])} |"
            )
        if "otsu" in r:
            o = r["otsu"]
            print(f"\nwater task (Otsu NDWI threshold {o['threshold']:.3f}, {o['seconds']:.1f} s):")
            for m, v in o["per_map"].items():
                print(f"- {m}: OA {v['oa']:.3f}, F1 water {v['f1']['Water']:.3f}")
    if results.get("nc_sweep"):
        print(
            "\n| SLIC size | objects | mean px | training objects | ceiling OA | OA | mIoU "
            "| s |\n|---|---|---|---|---|---|---|---|"
        )
        for row in results["nc_sweep"]:
            print(
                f"| {row['size']} | {row['objects']} | {row['mean_size_px']:.1f} | "
                f"{row['training_objects']} | {row['ceiling_oa']:.3f} | {row['oa']:.3f} | "
                f"{row['miou']:.3f} | {row['seconds']:.1f} |"
            )


if __name__ == "__main__":
    sys.exit(main())

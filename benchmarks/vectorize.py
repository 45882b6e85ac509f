"""Vectorization benchmark: geoseg on a 2-worker LocalCluster against gdal_polygonize.

    python benchmarks/vectorize.py                 # both 100 Mpx rasters, ~10 min on 2 cores
    python benchmarks/vectorize.py --side 4000     # smaller rasters, quicker
    python benchmarks/vectorize.py --only blobby   # or: speckled

Two class rasters of side x side pixels (10 m, EPSG:32612, uint8, nodata 0), generated and
written window by window: "blobby" (geoseg.synth's land-cover patches, ~100 px across) and
"speckled" (random 8x8-pixel patches plus 3 % isolated pixels). Each is polygonized to a
GeoPackage by ``gdal_polygonize`` (one process: it is single-threaded) and by
``geoseg.vector.vectorize.vectorize`` on a LocalCluster of 2 workers. geoseg's time is given
with the
cluster already started and used once (``warm``), and including a plain LocalCluster's start
and the workers' first imports (``cold``). The CLI's own cluster (engine ``connect``) also
preloads torch for prediction: its start time is printed separately. Outputs are compared:
polygon counts and per-class areas (relative tolerance 1e-9).

Needs gdal_polygonize (Debian: apt-get install gdal-bin); skips with a message without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-output"
CLASSES = [{"id": i + 1, "name": f"class{i + 1}"} for i in range(6)]
WIN = 1024


def gdal_polygonize() -> list[str] | None:
    for name in ("gdal_polygonize", "gdal_polygonize.py"):
        exe = shutil.which(name)
        if exe:
            return [exe]
    return None


def make_raster(kind: str, side: int) -> Path:
    """Write the class raster window by window (memory does not grow with its size)."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from geoseg.synth import SynthScene, SynthSpec

    path = OUT / f"classes_{kind}_{side}.tif"
    if path.exists():
        return path
    spec = SynthSpec(side, side, bands=1, n_classes=6, patch=100, seed=11)
    scene = SynthScene(spec) if kind == "blobby" else None
    tmp = path.with_suffix(".part.tif")
    t = time.perf_counter()
    with rasterio.open(
        tmp,
        "w",
        driver="GTiff",
        height=side,
        width=side,
        count=1,
        dtype="uint8",
        nodata=0,
        crs=spec.crs,
        transform=spec.transform,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    ) as ds:
        for r in range(0, side, WIN):
            for c in range(0, side, WIN):
                h, w = min(WIN, side - r), min(WIN, side - c)
                if scene is not None:
                    labels = scene.window(r, c, h, w)[1]
                else:  # 8x8 patches of random classes, 3 % of pixels flipped at random
                    rng = np.random.default_rng([spec.seed, r, c])
                    cells = rng.integers(1, 7, ((h + 7) // 8, (w + 7) // 8), dtype=np.uint8)
                    labels = np.kron(cells, np.ones((8, 8), np.uint8))[:h, :w]
                    flip = rng.random((h, w)) < 0.03
                    labels[flip] = rng.integers(1, 7, int(flip.sum()), dtype=np.uint8)
                ds.write(labels, 1, window=Window(c, r, w, h))
        ds.update_tags(1, CLASSES=json.dumps(CLASSES))
    os.replace(tmp, path)
    print(f"  generated {path.name} in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def layer_stats(path: Path, class_field: str) -> tuple[int, dict[int, float]]:
    """Polygon count and area per class, from the written file."""
    import numpy as np
    import pyogrio
    import shapely

    layers = [n for n, _ in pyogrio.list_layers(path) if n != "layer_styles"]
    _, _, wkb, field_data = pyogrio.raw.read(path, layer=layers[0], columns=[class_field])
    area = shapely.area(shapely.from_wkb(wkb))
    cls = np.asarray(field_data[0]).astype(int)
    return len(cls), {int(k): float(area[cls == k].sum()) for k in np.unique(cls)}


def run_gdal(exe: list[str], raster: Path, out: Path, connectivity: int) -> float:
    out.unlink(missing_ok=True)
    cmd = (
        exe
        + (["-8"] if connectivity == 8 else [])
        + ["-q", str(raster), "-f", "GPKG", str(out), "polygons", "class_id"]
    )
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def bench(kind: str, side: int, exe: list[str], connectivity: int, block: int) -> dict:
    from distributed import Client, LocalCluster

    from geoseg.vector.vectorize import vectorize

    raster = make_raster(kind, side)
    g_out, v_out = OUT / f"gdal_{kind}.gpkg", OUT / f"geoseg_{kind}.gpkg"
    t_gdal = run_gdal(exe, raster, g_out, connectivity)
    print(f"  gdal_polygonize: {t_gdal:.1f} s", flush=True)
    runs = []
    t0 = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        t_start = time.perf_counter() - t0
        for _ in range(2):  # the first run includes the workers' first imports
            t1 = time.perf_counter()
            vectorize(
                raster, v_out, client=client, connectivity=connectivity, block=block, overwrite=True
            )
            runs.append(time.perf_counter() - t1)
    t_cold, t_warm = t_start + runs[0], runs[1]
    print(
        f"  geoseg: {t_warm:.1f} s warm, {t_cold:.1f} s cold (cluster start {t_start:.1f} s "
        f"+ first run {runs[0]:.1f} s)",
        flush=True,
    )
    n_g, a_g = layer_stats(g_out, "class_id")
    n_v, a_v = layer_stats(v_out, "class_id")
    same = (
        n_g == n_v
        and a_g.keys() == a_v.keys()
        and all(abs(a_v[k] - a_g[k]) <= 1e-9 * a_g[k] for k in a_g)
    )
    return {
        "raster": kind,
        "side": side,
        "megapixels": side * side / 1e6,
        "connectivity": connectivity,
        "block": block,
        "gdal_s": round(t_gdal, 2),
        "geoseg_warm_s": round(t_warm, 2),
        "geoseg_cold_s": round(t_cold, 2),
        "ratio_warm": round(t_warm / t_gdal, 3),
        "ratio_cold": round(t_cold / t_gdal, 3),
        "polygons_gdal": n_g,
        "polygons_geoseg": n_v,
        "area_ha_gdal": {k: round(v / 1e4, 4) for k, v in a_g.items()},
        "area_ha_geoseg": {k: round(v / 1e4, 4) for k, v in a_v.items()},
        "identical": same,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=10000, help="raster side in pixels")
    ap.add_argument("--only", choices=["blobby", "speckled"])
    ap.add_argument("--connectivity", type=int, default=4, choices=[4, 8])
    ap.add_argument("--block", type=int, default=None, help="geoseg block size")
    args = ap.parse_args()
    exe = gdal_polygonize()
    if exe is None:
        print("SKIPPED: gdal_polygonize not found (Debian: apt-get install gdal-bin)")
        return 0
    from geoseg.vector.options import DEFAULT_BLOCK

    OUT.mkdir(exist_ok=True)
    gdal_version = subprocess.run(
        ["gdalinfo", "--version"], capture_output=True, text=True
    ).stdout.strip()
    import rasterio

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"gdal_polygonize: {gdal_version}; geoseg's rasterio GDAL {rasterio.__gdal_version__}"
    )
    from geoseg.cluster.setup import ClusterOptions, connect

    t = time.perf_counter()
    with connect(ClusterOptions(workers=2)):
        print(
            f"the CLI's cluster start (engine connect(), which preloads torch): "
            f"{time.perf_counter() - t:.1f} s",
            flush=True,
        )
    results = []
    for kind in [args.only] if args.only else ["blobby", "speckled"]:
        print(f"{kind} {args.side}x{args.side}:", flush=True)
        r = bench(kind, args.side, exe, args.connectivity, args.block or DEFAULT_BLOCK)
        print(json.dumps(r, indent=1), flush=True)
        results.append(r)
    print(
        "\n| raster | Mpx | gdal_polygonize s | geoseg s (warm / cold) | ratio (warm / cold) "
        "| polygons gdal / geoseg | per-class areas identical |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['raster']} | {r['megapixels']:.0f} | {r['gdal_s']:.1f} | "
            f"{r['geoseg_warm_s']:.1f} / {r['geoseg_cold_s']:.1f} | "
            f"{r['ratio_warm']:.2f} / {r['ratio_cold']:.2f} | "
            f"{r['polygons_gdal']:,} / {r['polygons_geoseg']:,} | {r['identical']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

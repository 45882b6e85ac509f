"""The COG writer alone: class blocks streamed into :class:`geoseg.io.cog.CogWriter` and
finished into a COG, per stage and per setting, at 268 Mpx (or ``--side``).

    python benchmarks/assembly.py                  # 16384 x 16384 (268 Mpx), every setting
    python benchmarks/assembly.py --side 8192      # 67 Mpx
    python benchmarks/assembly.py --deflate-levels # the default at DEFLATE levels 6 to 1

Blocks of 2048 px of a patchy class map (patches of 40 px, 5 % single-pixel noise: a land-cover
map's texture), as the engine's assembly writes them once it has completed each block. Each
setting prints the seconds to write the blocks into the temporary GeoTIFF and to build the COG
(overviews, compression, rename), Mpx/s for both together, the COG's size and this process's
peak memory. The first setting is the writer's default.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench-output" / "assembly"


def blocks(side: int, block: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for r in range(0, side, block):
        for c in range(0, side, block):
            h, w = min(block, side - r), min(block, side - c)
            small = rng.integers(1, 7, size=(h // 40 + 1, w // 40 + 1), dtype=np.uint8)
            cls = np.kron(small, np.ones((40, 40), np.uint8))[:h, :w]
            noise = rng.random((h, w)) < 0.05
            cls[noise] = rng.integers(1, 7, size=int(noise.sum()), dtype=np.uint8)
            yield r, c, cls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=16384)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument(
        "--deflate-levels", action="store_true", help="the default at DEFLATE levels 6 to 1"
    )
    args = ap.parse_args()
    settings = SETTINGS
    if args.deflate_levels:
        settings = {
            f"DEFLATE level {n}": {"finish": {"creation": {"LEVEL": n}}} for n in range(6, 0, -1)
        }

    from rasterio.transform import from_origin

    from geoseg.core.classes import ClassList
    from geoseg.core.grid import Window
    from geoseg.io.cog import CogWriter, RasterSpec

    classes = ClassList.model_validate(
        {"classes": [{"id": i, "name": f"class{i}"} for i in range(1, 7)]}
    )
    OUT.mkdir(parents=True, exist_ok=True)
    mpx = args.side**2 / 1e6
    cpu = os.cpu_count()
    print(
        f"COG writer, {args.side} x {args.side} ({mpx:.0f} Mpx), blocks of {args.block}, {cpu} CPUs"
    )
    print(f"{'setting':<34} {'write s':>8} {'finish s':>9} {'Mpx/s':>7} {'MB':>7} {'peak MiB':>9}")
    data = list(blocks(args.side, args.block))
    for name, kw in settings.items():
        scratch = OUT / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        spec = RasterSpec(
            height=args.side,
            width=args.side,
            count=1,
            crs="EPSG:32633",
            transform=from_origin(500000, 4000000, 10, 10),
            nodata=0,
            classes=classes,
        )
        out = OUT / "map.tif"
        for p in OUT.glob("map.*"):
            p.unlink()
        t0 = time.perf_counter()
        w = CogWriter(spec, scratch, "cls", **kw.get("writer", {}))
        for r, c, cls in data:
            w.write(Window(r, c, cls.shape[0], cls.shape[1]), cls)
        t1 = time.perf_counter()
        w.finish(out, **kw.get("finish", {}))
        t2 = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = out.stat().st_size / 1e6
        print(
            f"{name:<34} {t1 - t0:>8.2f} {t2 - t1:>9.2f} {mpx / (t2 - t0):>7.0f} "
            f"{size:>7.1f} {peak:>9.0f}",
            flush=True,
        )
    return 0


SETTINGS: dict[str, dict] = {
    "default": {},
    "GDAL's MODE overviews (before issue 29)": {"writer": {"pyramid": False}},
    "scratch uncompressed": {"writer": {"compress": "NONE"}},
    "one compression thread": {"finish": {"creation": {"NUM_THREADS": 1}}},
    "no overviews": {"finish": {"creation": {"OVERVIEWS": "NONE"}}},
    "no overviews, one thread": {"finish": {"creation": {"OVERVIEWS": "NONE", "NUM_THREADS": 1}}},
    "overviews NEAREST": {"finish": {"resampling": "NEAREST"}},
    "DEFLATE level 1": {"finish": {"creation": {"LEVEL": 1}}},
    "ZSTD level 1": {"finish": {"compress": "ZSTD", "creation": {"LEVEL": 1}}},
    "uncompressed, no overviews": {
        "writer": {"compress": "NONE"},
        "finish": {"compress": "NONE", "creation": {"OVERVIEWS": "NONE"}},
    },
}

if __name__ == "__main__":
    sys.exit(main())

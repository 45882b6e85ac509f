"""What ``--normalize auto`` decides, scene by scene: each scene's radiometric distance from a
bundle's training quantiles against the bundle's threshold (no prediction is run).

    python benchmarks/normalize_auto.py --bundle bench-output/train/dubai-lite0 \\
        --train '../shared/data/dubai/tile[1-6]/image_*.jpg' \\
        --scenes '../shared/data/dubai/tile[78]/image_*.jpg'

``--train``: the bundle's training scenes, for bundles made before they recorded their spread
(computed here as ``geoseg train`` does); prints per scene the largest band distance, the
threshold and the choice. Results go in BENCHMARKS.md (issue 24).
"""

from __future__ import annotations

import argparse
import glob
import warnings

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--train", help="glob of the training scenes (when the bundle has no spread)")
    ap.add_argument("--scenes", required=True, help="glob of the scenes to decide for")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # photos without a CRS: said once per file otherwise

    from geoseg.core.radiometry import auto_threshold, choose_auto, radiometric_distance
    from geoseg.io.scene import Scene
    from geoseg.io.stats import band_quantiles, spread_of
    from geoseg.model.bundle import read_meta

    meta = read_meta(args.bundle)
    train_q = np.asarray(meta.normalization.quantiles)
    spread = meta.normalization.spread
    if spread is None and args.train:
        scenes = [Scene.of(p) for p in sorted(glob.glob(args.train))]
        spread = spread_of(scenes, meta.bands, train_q)
    limit = auto_threshold(spread)
    print(f"bundle {args.bundle}: spread {spread}, threshold {limit:.2f}")
    counts: dict[str, int] = {}
    for path in sorted(glob.glob(args.scenes)):
        q = band_quantiles([Scene.of(path)], meta.bands)
        d = radiometric_distance(q, train_q).max()
        mode, _ = choose_auto(q, train_q, spread)
        counts[mode] = counts.get(mode, 0) + 1
        print(f"{path}: distance {d:.2f} -> {mode}")
    print(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Does a model depend on the ground resolution of its input? Predict labelled images at
several scales (the image resampled by s, the probabilities resampled back) and score them.

    python benchmarks/scale.py bench-output/train/dubai \\
        --images '../shared/data/dubai/tile7/image_*.jpg' \\
        --labels '../shared/data/dubai/tile7/label_*.png' --scales 1,0.7,0.5

Whole images go through the model in one piece (mirror-padded to a multiple of 32; fine for
images of a few Mpx), which isolates the scale from tiling. Labels hold class ids; pixels
whose id is not a class of the bundle are ignored. Prints OA, mIoU and per-class IoU per scale.
"""

from __future__ import annotations

import argparse
import glob
import sys
import warnings

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("--images", required=True, help="glob of images")
    ap.add_argument("--labels", required=True, help="glob of label rasters (sorted alike)")
    ap.add_argument("--scales", default="1,0.7,0.5")
    args = ap.parse_args()

    import rasterio
    import torch
    import torch.nn.functional as F

    from geoseg.core.metrics import ConfusionAccumulator, iou_scores, mean_iou, overall_accuracy
    from geoseg.model.factory import load_model
    from geoseg.model.runner import normalize

    warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)
    images, labels = sorted(glob.glob(args.images)), sorted(glob.glob(args.labels))
    if not images or len(images) != len(labels):
        print(f"error: {len(images)} images and {len(labels)} label files", file=sys.stderr)
        return 2
    scales = [float(v) for v in args.scales.split(",")]
    model, meta = load_model(args.bundle)
    model = model.eval().to(memory_format=torch.channels_last)
    lut = np.full(65536, -1, dtype=np.int64)
    for i, c in enumerate(meta.classes):
        lut[c.id] = i
    acc = {s: ConfusionAccumulator(meta.n_classes) for s in scales}
    for img, lab in zip(images, labels, strict=True):
        with rasterio.open(img) as src:
            x = src.read(meta.bands).astype(np.float32)
        with rasterio.open(lab) as src:
            ref = lut[src.read(1)]
        x = torch.from_numpy(normalize(x, np.ones(x.shape[1:], bool), meta))[None]
        height, width = x.shape[-2:]
        for s in scales:
            xs = x if s == 1 else F.interpolate(x, scale_factor=s, mode="bilinear", antialias=s < 1)
            h, w = xs.shape[-2:]
            xs = F.pad(xs, (0, -w % 32, 0, -h % 32), mode="reflect")
            with torch.inference_mode():
                p = torch.softmax(model(xs.contiguous(memory_format=torch.channels_last)), 1)
                p = p[..., :h, :w]
                if s != 1:
                    p = F.interpolate(p, size=(height, width), mode="bilinear")
            acc[s].add(p[0].argmax(0).numpy(), ref)
    print("| scale | OA | mIoU | " + " | ".join(c.name for c in meta.classes) + " |")
    print("|---" * (3 + meta.n_classes) + "|")
    for s in scales:
        cm = acc[s].matrix
        iou = " | ".join(f"{v:.3f}" for v in iou_scores(cm))
        print(f"| {s:g} | {overall_accuracy(cm):.3f} | {mean_iou(cm):.3f} | {iou} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

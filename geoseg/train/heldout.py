"""Accuracy of a trained bundle on the pixels its training config held out, predicted through
the engine (:func:`geoseg.engine.predict.predict`) exactly as a user would map them.

``roles=("test",)``: every labelled pixel of the scenes with role ``test``;
``roles=("val",)``: the validation pixels, i.e. scenes with role ``val`` and the validation
part (blocks or half) of scenes with role ``split``. Each scene is predicted whole into
``out_dir``; the class map is compared with the labels window by window (rows of the confusion
matrix = map, columns = reference).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window as RioWindow

from geoseg.cluster.setup import ClusterOptions, connect
from geoseg.core.classes import load_classes
from geoseg.core.metrics import ConfusionAccumulator, accuracy
from geoseg.engine.predict import predict
from geoseg.train.config import load_config
from geoseg.train.data import open_scenes
from geoseg.train.labels import IGNORE
from geoseg.train.sampling import scan_windows, split_scene


@dataclass
class HeldoutResult:
    matrix: np.ndarray  # rows = map, columns = reference
    class_names: list[str]
    maps: list[str] = field(default_factory=list)
    predict_seconds: float = 0.0
    megapixels: float = 0.0
    runtime: str = ""  # what the model ran in (PredictResult.runtime)

    @property
    def pixels(self) -> int:
        return int(self.matrix.sum())

    @property
    def figures(self):
        return accuracy(self.matrix)

    def summary(self) -> dict:
        a = self.figures
        return {
            "pixels": self.pixels,
            "oa": a.oa,
            "miou": a.miou,
            "iou": {n: float(v) for n, v in zip(self.class_names, a.iou, strict=True)},
            "megapixels": self.megapixels,
            "predict_seconds": self.predict_seconds,
            "runtime": self.runtime,
        }


def evaluate_heldout(
    config,
    bundle: str | Path,
    out_dir: str | Path,
    roles: tuple[str, ...] = ("test",),
    client=None,
    workers: int | None = None,
    block: int = 2048,
    tta: str = "none",
    normalize: str = "bundle",
    precision: str = "auto",
    runtime: str = "auto",
) -> HeldoutResult:
    cfg = load_config(config)
    classes = load_classes(cfg.classes)
    want = {"test": ("test",), "val": ("val", "split")}
    scene_roles = tuple(r for k in roles for r in want[k])
    scenes, _ = open_scenes(cfg, classes, roles=scene_roles, cache=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lut = np.full(256, -1, dtype=np.int64)
    for i, c in enumerate(classes.classes):
        lut[c.id] = i
    acc = ConfusionAccumulator(len(classes.classes))
    res = HeldoutResult(acc.matrix, [c.name for c in classes.classes])
    with connect(ClusterOptions(workers=workers), client) as c:
        for d in scenes:
            split = split_scene(cfg.split, d)
            path = out / f"{d.index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', d.name)}.tif"
            t = time.perf_counter()
            r = predict(
                d.scene,
                str(bundle),
                path,
                client=c,
                block=block,
                overwrite=True,
                tta=tta,
                normalize=normalize,
                precision=precision,
                runtime=runtime,
            )
            res.runtime = r.runtime
            res.predict_seconds += time.perf_counter() - t
            res.megapixels += r.megapixels
            res.maps.append(r.path)
            with rasterio.open(r.path) as src:
                for w in scan_windows(d.height, d.width):
                    mapped = lut[src.read(1, window=RioWindow(w.col, w.row, w.width, w.height))]
                    ref = d.labels.read(w).astype(np.int64)
                    ref[ref == IGNORE] = -1
                    if d.role == "split":
                        ref[~split.val_mask(w)] = -1
                    acc.add(mapped, ref)
    res.matrix = acc.matrix
    return res

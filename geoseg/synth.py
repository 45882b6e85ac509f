"""Synthetic scenes of any size: blobby land-cover patches with distinct class spectra.

Classes come from the argmax of smooth random fields (two octaves, bilinearly interpolated
from coarse lattices), which gives irregular, contiguous patches like real land cover. Each
class has its own mean spectrum; pixels add texture noise and a slow illumination gradient.
Scenes are generated and written window by window, so memory does not grow with their size,
and the result depends only on the seed (not on the window layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window as RioWindow

_GEN_BLOCK = 1024


@dataclass(frozen=True)
class SynthSpec:
    height: int
    width: int
    bands: int = 4
    n_classes: int = 5
    patch: int = 96  # typical patch diameter in pixels
    seed: int = 0
    nodata_fraction: float = 0.0  # share of the scene covered by nodata areas (approx.)
    crs: str | None = "EPSG:32612"
    res: float = 10.0
    dtype: str = "uint16"
    nodata: int = 0

    @property
    def transform(self):
        return from_origin(500000.0, 4200000.0, self.res, self.res)


def class_spectra(spec: SynthSpec) -> np.ndarray:
    """Mean value of each class in each band (n_classes x bands), distinct and reproducible."""
    rng = np.random.default_rng(spec.seed + 7919)
    hi = 250 if spec.dtype == "uint8" else 4000
    lo = 20 if spec.dtype == "uint8" else 300
    return rng.uniform(lo, hi, size=(spec.n_classes, spec.bands))


def _lattice(spec: SynthSpec, step: float, k: int, salt: int) -> np.ndarray:
    rng = np.random.default_rng([spec.seed, salt])
    return rng.standard_normal(
        (k, int(np.ceil(spec.height / step)) + 2, int(np.ceil(spec.width / step)) + 2)
    ).astype(np.float32)


def _interp(lat: np.ndarray, step: float, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    y, x = rows / step, cols / step
    i0, j0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - i0)[:, None].astype(np.float32), (x - j0)[None, :].astype(np.float32)
    a = lat[:, i0][:, :, j0]
    b = lat[:, i0][:, :, j0 + 1]
    c = lat[:, i0 + 1][:, :, j0]
    d = lat[:, i0 + 1][:, :, j0 + 1]
    return a * (1 - fy) * (1 - fx) + b * (1 - fy) * fx + c * fy * (1 - fx) + d * fy * fx


class SynthScene:
    def __init__(self, spec: SynthSpec):
        self.spec = spec
        s = spec
        self.coarse = _lattice(s, s.patch, s.n_classes, 1)
        self.fine = _lattice(s, s.patch / 4, s.n_classes, 2)
        self.holes = _lattice(s, s.patch * 2, 1, 3)
        self.light = _lattice(s, max(s.height, s.width) / 2, 1, 4)
        self.spectra = class_spectra(s)
        # threshold on a unit normal-ish field giving about nodata_fraction coverage
        from statistics import NormalDist

        f = min(max(s.nodata_fraction, 0.0), 0.99)
        self.hole_thr = NormalDist(0, 0.6).inv_cdf(1 - f) if f > 0 else np.inf

    def window(self, row: int, col: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(bands x h x w image, h x w labels 1..n_classes with 0 = nodata)."""
        s = self.spec
        rows = np.arange(row, row + h, dtype=np.float64)
        cols = np.arange(col, col + w, dtype=np.float64)
        field = _interp(self.coarse, s.patch, rows, cols) + 0.35 * _interp(
            self.fine, s.patch / 4, rows, cols
        )
        labels = (np.argmax(field, axis=0) + 1).astype(np.uint8)
        rng = np.random.default_rng([s.seed, 5, row, col])
        light = 1.0 + 0.08 * _interp(self.light, max(s.height, s.width) / 2, rows, cols)[0]
        img = self.spectra[labels - 1].transpose(2, 0, 1) * light
        scale = 0.06 * self.spectra.mean()
        img = img + rng.normal(0, scale, size=img.shape)
        info = np.iinfo(s.dtype) if np.dtype(s.dtype).kind in "ui" else None
        if info is not None:
            img = np.clip(np.rint(img), max(info.min, s.nodata + 1), info.max)
        img = img.astype(s.dtype)
        if np.isfinite(self.hole_thr):
            holes = _interp(self.holes, s.patch * 2, rows, cols)[0] > self.hole_thr
            img[:, holes] = s.nodata
            labels[holes] = 0
        return img, labels


def make_scene(
    path: str | Path,
    spec: SynthSpec,
    labels_path: str | Path | None = None,
) -> Path:
    """Write the scene (and optionally its label raster) as tiled GeoTIFFs, window by window."""
    scene = SynthScene(spec)
    prof = dict(
        driver="GTiff",
        height=spec.height,
        width=spec.width,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        BIGTIFF="IF_SAFER",
    )
    if spec.crs:
        prof.update(crs=spec.crs, transform=spec.transform)
    img_ds = rasterio.open(
        path, "w", count=spec.bands, dtype=spec.dtype, nodata=spec.nodata, **prof
    )
    lab_ds = (
        rasterio.open(labels_path, "w", count=1, dtype="uint8", nodata=0, **prof)
        if labels_path
        else None
    )
    try:
        for r in range(0, spec.height, _GEN_BLOCK):
            for c in range(0, spec.width, _GEN_BLOCK):
                h, w = min(_GEN_BLOCK, spec.height - r), min(_GEN_BLOCK, spec.width - c)
                img, lab = scene.window(r, c, h, w)
                win = RioWindow(c, r, w, h)
                img_ds.write(img, window=win)
                if lab_ds is not None:
                    lab_ds.write(lab, 1, window=win)
    finally:
        img_ds.close()
        if lab_ds is not None:
            lab_ds.close()
    return Path(path)

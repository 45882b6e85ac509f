"""Features of objects (OBIA) and of pixels (pixel random forest).

Per object: per-band mean, standard deviation and percentiles of the pixel values; the mean
and standard deviation of normalised-difference indices (NDVI, NDWI) where the band roles
allow; grey-level co-occurrence texture of the brightness (mean z-score of the bands) inside
the object only (the counts of skimage.feature.graycomatrix for each object, the properties of
graycoprops); and shape after skimage.measure.regionprops: area, perimeter, compactness
4 pi A / P^2 and eccentricity.
Sums run through ``np.bincount`` over all objects at once; only the perimeter loops per object
(inside skimage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geoseg.baseline.config import BaselineConfig
from geoseg.errors import GeoSegError

ANGLES = (0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4)
GLCM_RANGE = 2.5  # brightness z-scores in [-2.5, 2.5] are quantised into the GLCM levels
GLCM_CHUNK = 2048  # objects per graycoprops call


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[str, ...]
    n_bands: int
    band_names: tuple[str, ...]
    percentiles: tuple[float, ...]
    indices: tuple[tuple[str, int, int], ...]  # (name, position of a, position of b)
    glcm_levels: int
    glcm_distances: tuple[int, ...]
    glcm_properties: tuple[str, ...]

    @classmethod
    def of(
        cls,
        cfg: BaselineConfig,
        bands: list[int],
        band_names: list[str] | None = None,
    ) -> FeatureSpec:
        """The features of ``cfg`` for a scene read with ``bands`` (scene band numbers)."""
        return cls(
            tuple(cfg.features),
            len(bands),
            tuple(band_names or [f"b{b}" for b in bands]),
            tuple(cfg.percentiles),
            index_positions(cfg, bands),
            cfg.glcm.levels,
            tuple(cfg.glcm.distances),
            tuple(cfg.glcm.properties),
        )

    def names(self) -> list[str]:
        out: list[str] = []
        bn = self.band_names
        if "mean" in self.features:
            out += [f"mean_{b}" for b in bn]
        if "std" in self.features:
            out += [f"std_{b}" for b in bn]
        if "percentiles" in self.features:
            out += [f"p{p:g}_{b}" for b in bn for p in self.percentiles]
        if "indices" in self.features:
            out += [f"{n}_{s}" for n, _, _ in self.indices for s in ("mean", "std")]
        if "glcm" in self.features:
            out += [f"glcm_{p}" for p in self.glcm_properties]
        if "shape" in self.features:
            out += ["area", "perimeter", "compactness", "eccentricity"]
        return out


def index_positions(cfg: BaselineConfig, bands: list[int]) -> tuple[tuple[str, int, int], ...]:
    """(index name, position of band a, position of band b) in ``bands`` for each index the
    band roles allow (index = (a - b) / (a + b))."""
    out = []
    for name, (a, b) in cfg.band_roles.indices().items():
        missing = [x for x in (a, b) if x not in bands]
        if missing:
            raise GeoSegError(
                f"band_roles name band(s) {missing} for {name.upper()}, but the "
                f"training config reads bands {bands}: use their scene numbers"
            )
        out.append((name, bands.index(a), bands.index(b)))
    return tuple(out)


def normalised_difference(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """(x[a] - x[b]) / (x[a] + x[b]) of bands x h x w (0 where the sum is 0)."""
    num = x[a].astype(np.float32) - x[b]
    den = x[a].astype(np.float32) + x[b]
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def pixel_features(
    x: np.ndarray, valid: np.ndarray, indices: tuple[tuple[str, int, int], ...]
) -> np.ndarray:
    """(valid pixels x features) float32: the band values, then each index."""
    cols = [x[:, valid].T]
    cols += [normalised_difference(x, a, b)[valid][:, None] for _, a, b in indices]
    return np.concatenate(cols, axis=1).astype(np.float32)


def object_features(
    x: np.ndarray, z: np.ndarray, lab: np.ndarray, m: int, spec: FeatureSpec
) -> np.ndarray:
    """(m x features) float32 for objects 0..m-1 of ``lab`` (-1: no object) over the bands
    ``x`` (bands x h x w, sensor values) and their z-scores ``z``."""
    sel = lab >= 0
    ids = lab[sel]
    cnt = np.bincount(ids, minlength=m).astype(np.float64)
    vals = x[:, sel].astype(np.float64)
    f = spec.features
    cols: list[np.ndarray] = []
    if "mean" in f or "std" in f:
        mean, std = _moments(ids, vals, cnt)
        cols += [mean] if "mean" in f else []
        cols += [std] if "std" in f else []
    if "percentiles" in f:
        cols += [_percentiles(ids, v, cnt, spec.percentiles) for v in vals]
    if "indices" in f and spec.indices:
        for _, a, b in spec.indices:
            mean, std = _moments(ids, normalised_difference(x, a, b)[sel][None], cnt)
            cols.append(np.concatenate([mean, std], axis=1))
    if "glcm" in f:
        cols.append(_glcm(z, lab, m, spec))
    if "shape" in f:
        cols.append(_shape(lab, m))
    out = np.concatenate(cols, axis=1) if cols else np.zeros((m, 0))
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _moments(ids: np.ndarray, vals: np.ndarray, cnt: np.ndarray):
    """Per-object mean and standard deviation (m x bands each) of ``vals`` (bands x N)."""
    m = len(cnt)
    den = np.maximum(cnt, 1)[:, None]
    s1 = np.stack([np.bincount(ids, v, m) for v in vals], axis=1) / den
    s2 = np.stack([np.bincount(ids, v * v, m) for v in vals], axis=1) / den
    return s1, np.sqrt(np.maximum(s2 - s1 * s1, 0.0))


def _percentiles(ids: np.ndarray, v: np.ndarray, cnt: np.ndarray, ps) -> np.ndarray:
    """Per-object percentiles (linear interpolation, as numpy's default) of one band."""
    order = np.lexsort((v, ids))
    sv = v[order]
    n = cnt.astype(np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    last = np.maximum(n - 1, 0)
    out = []
    for p in ps:
        pos = p / 100.0 * last
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        frac = pos - lo
        out.append(sv[start + lo] * (1 - frac) + sv[start + hi] * frac)
    return np.stack(out, axis=1)


def _glcm(z: np.ndarray, lab: np.ndarray, m: int, spec: FeatureSpec) -> np.ndarray:
    """Texture of each object's brightness: the co-occurrence counts of all objects at once
    (pixel pairs at skimage's offsets for each distance and angle, both pixels in the same
    object, made symmetric), which are exactly ``graycomatrix(..., symmetric=True)`` of each
    object alone; ``graycoprops`` of each, averaged over distances and angles."""
    from skimage.feature import graycoprops

    levels = spec.glcm_levels
    bright = z.mean(axis=0)
    q = np.clip(np.floor((bright + GLCM_RANGE) / (2 * GLCM_RANGE) * levels), 0, levels - 1)
    q = q.astype(np.int64)
    lab = lab.astype(np.int64)
    out = np.zeros((m, len(spec.glcm_properties)))
    offsets = [
        (round(math.sin(a) * d), round(math.cos(a) * d))
        for d in spec.glcm_distances
        for a in ANGLES
    ]
    for dr, dc in offsets:
        la, lb = _shifted(lab, dr, dc)
        qa, qb = _shifted(q, dr, dc)
        same = (la == lb) & (la >= 0)
        code = (la[same] * levels + qa[same]) * levels + qb[same]
        counts = np.bincount(code, minlength=m * levels * levels).reshape(m, levels, levels)
        counts += counts.transpose(0, 2, 1)
        for k in range(0, m, GLCM_CHUNK):
            chunk = counts[k : k + GLCM_CHUNK].transpose(1, 2, 0)[:, :, :, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                out[k : k + GLCM_CHUNK] += np.stack(
                    [graycoprops(chunk, p)[:, 0] for p in spec.glcm_properties], axis=1
                )
    return out / len(offsets)


def _shifted(a: np.ndarray, dr: int, dc: int) -> tuple[np.ndarray, np.ndarray]:
    """Views of ``a`` at pixels p and p + (dr, dc), where both lie inside ``a``."""
    h, w = a.shape
    r0, r1, c0, c1 = max(0, -dr), min(h, h - dr), max(0, -dc), min(w, w - dc)
    return a[r0:r1, c0:c1], a[r0 + dr : r1 + dr, c0 + dc : c1 + dc]


def _shape(lab: np.ndarray, m: int) -> np.ndarray:
    """Area and perimeter from skimage's regionprops; compactness; eccentricity from the
    objects' second central moments (regionprops' formula, sqrt(1 - l2 / l1) of the inertia
    tensor's eigenvalues, computed for all objects at once: regionprops takes ~1 ms each)."""
    from skimage.measure import regionprops_table

    t = regionprops_table(lab + 1, properties=("label", "area", "perimeter"))
    out = np.zeros((m, 4))
    k = t["label"] - 1
    area, per = t["area"].astype(float), t["perimeter"].astype(float)
    comp = np.divide(4 * np.pi * area, per * per, out=np.ones_like(area), where=per > 0)
    out[k, :3] = np.stack([area, per, comp], axis=1)
    rr, cc = np.nonzero(lab >= 0)
    ids = lab[rr, cc]
    n = np.maximum(np.bincount(ids, minlength=m), 1)

    def mean(v):
        return np.bincount(ids, v, m) / n

    mr, mc = mean(rr), mean(cc)
    vrr, vcc = mean(rr * rr) - mr**2, mean(cc * cc) - mc**2
    vrc = mean(rr * cc) - mr * mc
    half, root = (vrr + vcc) / 2, np.sqrt(((vrr - vcc) / 2) ** 2 + vrc**2)
    l1, l2 = half + root, np.maximum(half - root, 0)
    out[:, 3] = np.sqrt(1 - np.divide(l2, l1, out=np.ones_like(l1), where=l1 > 1e-12))
    return out

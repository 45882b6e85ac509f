"""Per-band radiometric mappings: a scene's band values put onto the training radiometry.

A :class:`BandMapping` is applied to a tile's raw band values before the bundle's own
normalisation, so the model sees what it saw in training even when the scene is another date
or sensor state. Three ways to make one (``geoseg predict --normalize``):

- ``scene``: robust standardisation. Each band's median and interquartile range in the scene
  are moved onto the training ones (or onto the bundle's mean and standard deviation, the
  IQR of a normal distribution being 1.349 sigma, for bundles without training quantiles).
  An affine change of a band (gain and offset) is undone exactly.
- ``match``: quantile (histogram) matching: the scene's quantiles of each band go onto the
  training quantiles, linearly between them; beyond the outermost quantiles the end segments
  continue. It also undoes non-linear changes (gamma, saturation).
- ``affine``: explicit gains and offsets (pseudo-invariant features between two dates).

Everything here is plain numpy on small arrays, so every worker can apply a mapping cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geoseg.errors import GeoSegError

# how a scene's band values are brought to the bundle's (--normalize; engine.radiometry)
NORMALIZE_MODES = ("auto", "bundle", "scene", "match")
PERCENTILES = tuple(float(p) for p in range(101))  # quantiles a bundle stores per band
IQR_SIGMA = 1.3489795  # interquartile range of a standard normal distribution


@dataclass(frozen=True)
class BandMapping:
    """Piecewise-linear maps of each band, ``x -> y``: ``src[b]`` and ``dst[b]`` are knots
    (strictly increasing ``src``); outside the knots the end segments extend linearly."""

    mode: str
    src: tuple[tuple[float, ...], ...]
    dst: tuple[tuple[float, ...], ...]

    def __post_init__(self):
        if len(self.src) != len(self.dst):
            raise ValueError("a mapping needs as many source as target bands")
        for s, d in zip(self.src, self.dst, strict=True):
            if len(s) != len(d) or len(s) < 2 or np.any(np.diff(s) <= 0):
                raise ValueError("mapping knots must be >= 2 strictly increasing values")

    @property
    def bands(self) -> int:
        return len(self.src)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Map ``data`` (bands x ...) band by band, in place for float arrays."""
        if data.shape[0] != self.bands:
            raise GeoSegError(
                f"the radiometric mapping has {self.bands} bands, the data {data.shape[0]}"
            )
        out = data if np.issubdtype(data.dtype, np.floating) else data.astype(np.float32)
        for b, (s, d) in enumerate(zip(self.src, self.dst, strict=True)):
            out[b] = _interp_extrapolate(out[b], np.asarray(s), np.asarray(d))
        return out

    def describe(self) -> dict:
        """A JSON-ready summary: per band gain and offset where the map is affine, else the
        number of knots and the targets of the median and the ends."""
        bands = []
        for s, d in zip(self.src, self.dst, strict=True):
            if len(s) == 2:
                gain = (d[1] - d[0]) / (s[1] - s[0])
                bands.append({"gain": gain, "offset": d[0] - gain * s[0]})
            else:
                bands.append({"knots": len(s), "src": [s[0], s[len(s) // 2], s[-1]]})
        return {"mode": self.mode, "bands": bands}

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "src": [list(s) for s in self.src],
            "dst": [list(d) for d in self.dst],
        }


def _interp_extrapolate(x: np.ndarray, s: np.ndarray, d: np.ndarray) -> np.ndarray:
    y = np.interp(x, s, d)
    lo, hi = x < s[0], x > s[-1]
    if lo.any():
        y[lo] = d[0] + (x[lo] - s[0]) * (d[1] - d[0]) / (s[1] - s[0])
    if hi.any():
        y[hi] = d[-1] + (x[hi] - s[-1]) * (d[-1] - d[-2]) / (s[-1] - s[-2])
    return y


def quantiles_of(values: np.ndarray) -> np.ndarray:
    """The :data:`PERCENTILES` of each band of ``values`` (bands x n, valid pixels only)."""
    if values.ndim != 2 or values.shape[1] == 0:
        raise GeoSegError("no valid pixels to compute band quantiles from: is the scene empty?")
    return np.percentile(values.astype(np.float64), PERCENTILES, axis=1).T


def location_scale(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and sigma-equivalent spread (IQR / 1.349) of each band from its quantiles."""
    q = np.asarray(q, dtype=np.float64)
    loc = q[:, 50]
    scale = (q[:, 75] - q[:, 25]) / IQR_SIGMA
    # a band with a degenerate IQR (mostly one value): fall back to the 2-98 % range
    wide = (q[:, 98] - q[:, 2]) / (2 * 2.0537489)
    scale = np.where(scale > 0, scale, wide)
    if np.any(scale <= 0):
        bad = [int(b) + 1 for b in np.flatnonzero(scale <= 0)]
        raise GeoSegError(
            f"band(s) {bad} of the scene are constant: they cannot be standardised; "
            "use --normalize bundle"
        )
    return loc, scale


def scene_mapping(scene_q, train_q=None, mean=None, std=None) -> BandMapping:
    """``scene``: the scene's median and spread onto the training ones (from the training
    quantiles, else from the bundle's mean and standard deviation)."""
    loc_s, sc_s = location_scale(scene_q)
    if train_q is not None:
        loc_t, sc_t = location_scale(train_q)
    else:
        loc_t, sc_t = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    return affine_mapping(sc_t / sc_s, loc_t - sc_t / sc_s * loc_s, mode="scene")


def affine_mapping(gain, offset, mode: str = "affine") -> BandMapping:
    """``y = gain * x + offset`` per band (gains must be positive)."""
    gain, offset = np.asarray(gain, dtype=np.float64), np.asarray(offset, dtype=np.float64)
    if np.any(gain <= 0) or not np.all(np.isfinite(gain) & np.isfinite(offset)):
        raise GeoSegError(f"radiometric gains must be positive and finite, got {gain.tolist()}")
    src = tuple((0.0, 1.0) for _ in gain)
    dst = tuple((float(o), float(g + o)) for g, o in zip(gain, offset, strict=True))
    return BandMapping(mode, src, dst)


def match_mapping(scene_q, train_q) -> BandMapping:
    """``match``: each scene quantile onto the same training quantile. Runs of equal scene
    quantiles (integer data, saturated bands) collapse to one knot whose target is their
    mean, so the knots stay strictly increasing."""
    scene_q, train_q = np.asarray(scene_q, np.float64), np.asarray(train_q, np.float64)
    if scene_q.shape != train_q.shape:
        raise GeoSegError(
            f"the scene has {scene_q.shape[0]} bands of quantiles, the bundle {train_q.shape[0]}"
        )
    src, dst = [], []
    for s, d in zip(scene_q, train_q, strict=True):
        ks, inv = np.unique(s, return_inverse=True)
        kd = np.bincount(inv, weights=d) / np.bincount(inv)
        if len(ks) < 2:
            raise GeoSegError(
                "a band of the scene is constant: it cannot be matched; use --normalize bundle"
            )
        src.append(tuple(ks.tolist()))
        dst.append(tuple(kd.tolist()))
    return BandMapping("match", tuple(src), tuple(dst))


def mapping_from_json(doc: dict) -> BandMapping:
    return BandMapping(
        doc["mode"], tuple(tuple(s) for s in doc["src"]), tuple(tuple(d) for d in doc["dst"])
    )


# --normalize auto: a scene whose bands lie this far from the training radiometry (in the
# units of radiometric_distance) is standardised onto it ('scene'); nearer, the bundle's
# statistics are used as they are. Measured (benchmarks/normalize_auto.py): the training
# scene itself is at 0; the NC scene with per-band gains 0.70-1.14, offsets -8..+20 DN and
# gammas 0.93-1.19 at 1.33, where 'bundle' loses 0.077 OA and 'scene' none. The floor sits
# between them; a bundle trained on many scenes raises it to 1.25x the farthest of its own
# training scenes (Dubai's photos differ by content up to ~1.5, and 'scene' costs them 0.24 OA).
AUTO_FLOOR = 0.5
AUTO_MARGIN = 1.25


def radiometric_distance(scene_q, train_q) -> np.ndarray:
    """Per band, how far a scene's radiometry is from the training one: the larger of the
    median's shift in training spreads and the spread's log ratio (0 for the same bands)."""
    loc_s, sc_s = location_scale(scene_q)
    loc_t, sc_t = location_scale(train_q)
    return np.maximum(np.abs(loc_s - loc_t) / sc_t, np.abs(np.log(sc_s / sc_t)))


def auto_threshold(spread: float | None) -> float:
    """The distance beyond which ``auto`` standardises the scene, for a bundle whose own
    training scenes lie up to ``spread`` from its pooled radiometry."""
    return max(AUTO_FLOOR, AUTO_MARGIN * (spread or 0.0))


def choose_auto(scene_q, train_q, spread: float | None) -> tuple[str, str]:
    """``auto``: (``bundle`` or ``scene``, the reason in words)."""
    d = radiometric_distance(scene_q, train_q)
    b = int(np.argmax(d))
    limit = auto_threshold(spread)
    if d[b] > limit:
        return "scene", (
            f"band {b + 1} is {d[b]:.2f} from the training radiometry (> {limit:.2f}): "
            "the scene's band statistics were moved onto the training ones"
        )
    return "bundle", (
        f"the scene's bands are within {d[b]:.2f} of the training radiometry "
        f"(<= {limit:.2f}): the bundle's statistics were used as they are"
    )

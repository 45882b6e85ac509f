"""Training augmentation: random zoom (crops of another size resampled to the crop), per-band
radiometry (gain, offset, gamma: other dates and sensor states), the eight D4 symmetries (flips,
90-degree rotations) and brightness/contrast jitter, applied per sample to normalised bands.

Which space the bands are in: ``train._batch`` reads a window, standardises it with the
bundle's per-band mean/std (``model.runner.normalize``: invalid pixels set to 0, the mean),
resamples it (zoom) and only then calls :func:`augment`. So every band here is a z-score
(``(x - mean) / std`` of the training pixels) and additive amounts are in band standard
deviations; invalid pixels hold 0 (or, after zoom, a bilinear blend near nodata edges).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from geoseg.train.config import AugmentConfig, PerBandConfig

# Gamma acts on this robust range of the standardised bands, z in [-R, R] (99.7% of a normal
# band's pixels), mapped onto [0, 1].
GAMMA_RANGE = 3.0


def zoom_size(crop: int, cfg: AugmentConfig, rng: np.random.Generator) -> int:
    """Side of the window to read for one sample: ``crop`` times a log-uniform zoom factor."""
    if cfg.scale is None or cfg.scale[0] == cfg.scale[1] == 1:
        return crop
    lo, hi = math.log(cfg.scale[0]), math.log(cfg.scale[1])
    return max(8, round(crop * math.exp(rng.uniform(lo, hi))))


def resample(
    x: np.ndarray, valid: np.ndarray, y: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square sample resampled to ``size`` x ``size``: bands bilinearly (antialiased when
    shrinking), validity and labels by nearest neighbour (classes are never blended)."""
    n = x.shape[-1]
    if n == size:
        return x, valid, y
    xt = torch.from_numpy(np.ascontiguousarray(x))[None]
    x = F.interpolate(xt, size=(size, size), mode="bilinear", antialias=size < n)[0].numpy()
    idx = np.minimum(((np.arange(size) + 0.5) * (n / size)).astype(np.intp), n - 1)
    return x, valid[np.ix_(idx, idx)], y[np.ix_(idx, idx)]


def draw_per_band(
    bands: int, cfg: PerBandConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Gain, offset and gamma (float32, one of each per band) for one sample, or None (with
    probability ``1 - p``: the sample is left as it is). Gain and gamma are log-uniform (in
    [0.8, 1.25] a factor is as likely as its inverse), the offset uniform; every band draws its
    own."""
    if rng.random() >= cfg.p:
        return None

    def log_uniform(r: tuple[float, float]) -> np.ndarray:
        return np.exp(rng.uniform(math.log(r[0]), math.log(r[1]), size=bands))

    gain, gamma = log_uniform(cfg.gain), log_uniform(cfg.gamma)
    offset = rng.uniform(cfg.offset[0], cfg.offset[1], size=bands)
    return gain.astype(np.float32), offset.astype(np.float32), gamma.astype(np.float32)


def apply_per_band(
    x: np.ndarray, valid: np.ndarray, gain: np.ndarray, offset: np.ndarray, gamma: np.ndarray
) -> np.ndarray:
    """Bands (z-scores) -> ``gain * g(z) + offset`` on valid pixels; invalid pixels keep their
    values exactly. ``g`` is the gamma curve on the robust range: ``u = (z + R) / 2R`` clipped
    to [0, 1], ``g(z) = z + 2R (u**gamma - u)``, i.e. ``2R u**gamma - R`` inside [-R, R] and the
    identity outside (``u**gamma`` keeps 0 and 1), so it is continuous and monotonic, keeps the
    order of a band's values and never clips outliers (clouds, glint). It is not meant to be
    inverted. Gamma is applied here, on standardised bands, rather than before standardisation
    because raw bands have no known range to put onto [0, 1] (8-bit DNs, 16-bit reflectance x 1e4,
    float reflectance; the bundle records none), while +-R standard deviations fits any sensor
    and keeps the order normalise -> zoom -> augment (invalid pixels 0 before interpolation).
    Gain scales a band about its mean (z = 0); a raw-space gain, ``x -> k x``, is a gain plus
    an offset here. With gain 1, offset 0 and gamma 1 the bands come back bit for bit."""
    r = GAMMA_RANGE
    g = gamma[:, None, None]
    u = np.clip((x + r) / (2 * r), 0, 1)
    z = x + (2 * r) * (u**g - u)
    z = z * gain[:, None, None] + offset[:, None, None]
    return np.where(valid, z, x).astype(np.float32, copy=False)


def per_band(
    x: np.ndarray, valid: np.ndarray, cfg: PerBandConfig, rng: np.random.Generator
) -> np.ndarray:
    """Per-band radiometric augmentation of one sample (bands x h x w, standardised)."""
    f = draw_per_band(x.shape[0], cfg, rng)
    return x if f is None else apply_per_band(x, valid, *f)


def augment(
    x: np.ndarray, valid: np.ndarray, y: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Image (bands x h x w, normalised; invalid pixels 0) and labels (h x w), transformed
    alike; returns contiguous arrays. ``valid`` is read, never changed."""
    if cfg.per_band is not None:  # None: no draws, so the generator's stream is as before
        x = per_band(x, valid, cfg.per_band, rng)
    if cfg.contrast > 0 or cfg.brightness > 0:
        bands = x.shape[0]
        gain = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, size=(bands, 1, 1))
        shift = rng.uniform(-cfg.brightness, cfg.brightness, size=(bands, 1, 1))
        x = (x * gain.astype(np.float32) + shift.astype(np.float32)) * valid
    if cfg.d4:
        k = int(rng.integers(4))
        x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k)
        if rng.random() < 0.5:
            x, y = x[:, :, ::-1], y[:, ::-1]
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y)

"""Training augmentation: zoomed crops (window size, resampling of bands, validity and labels),
where zoomed windows may be placed, and per-band radiometry (gain, offset, gamma)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from geoseg.core.classes import load_classes
from geoseg.errors import GeoSegError
from geoseg.train.augment import (
    GAMMA_RANGE,
    apply_per_band,
    augment,
    draw_per_band,
    resample,
    zoom_size,
)
from geoseg.train.config import AugmentConfig, PerBandConfig, load_config
from geoseg.train.labels import IGNORE
from geoseg.train.prepare import prepare

CLASSES = [{"id": i + 1, "name": f"c{i + 1}"} for i in range(5)]


def test_zoom_sizes_are_log_uniform_within_the_range():
    rng = np.random.default_rng(0)
    assert zoom_size(256, AugmentConfig(), rng) == 256
    assert zoom_size(256, AugmentConfig(scale=(1, 1)), rng) == 256
    sizes = np.array([zoom_size(256, AugmentConfig(scale=(0.5, 2.0)), rng) for _ in range(4000)])
    assert sizes.min() >= 128 and sizes.max() <= 512
    assert sizes.min() < 135 and sizes.max() > 490  # the whole range is drawn
    # log-uniform: as many zoomed in (< crop) as zoomed out, the median at the crop itself
    assert abs(np.mean(sizes < 256) - 0.5) < 0.04 and abs(np.median(sizes) - 256) < 12


def test_resampling_keeps_classes_whole_and_bands_smooth():
    rng = np.random.default_rng(1)
    y = np.kron(rng.integers(0, 5, (8, 8)), np.ones((8, 8), int)).astype(np.uint8)  # 64 x 64
    valid = np.ones((64, 64), bool)
    valid[:, :16] = False
    x = np.stack([np.add.outer(np.arange(64.0), np.zeros(64)), np.full((64, 64), 3.0)])
    x = x.astype(np.float32)
    # zoomed out by 2: every other pixel of the labels (nearest, never a blended class id)
    x2, v2, y2 = resample(x, valid, y, 32)
    assert x2.shape == (2, 32, 32) and y2.dtype == np.uint8
    assert np.array_equal(y2, y[1::2, 1::2]) and np.array_equal(v2, valid[1::2, 1::2])
    assert np.allclose(x2[1], 3.0)  # a constant band stays constant
    assert np.allclose(x2[0].mean(), x[0].mean(), atol=0.01)  # antialiased: the mean is kept
    # zoomed in by 2: each label pixel becomes a 2 x 2 block
    x3, v3, y3 = resample(x, valid, y, 128)
    assert np.array_equal(y3, np.kron(y, np.ones((2, 2), int)))
    assert np.array_equal(v3, np.kron(valid, np.ones((2, 2), bool)))
    assert np.all(np.diff(x3[0], axis=0) >= 0)  # a ramp stays monotonic
    assert resample(x, valid, y, 64)[0] is x  # no zoom: untouched
    # the rest of the augmentation keeps images and labels aligned
    xa, ya = augment(x3, v3, y3, AugmentConfig(brightness=0, contrast=0), rng)
    assert xa.shape == (2, 128, 128) and sorted(np.unique(ya)) == sorted(np.unique(y))


def test_zoomed_windows_keep_clear_of_validation(synth, tmp_path):
    scene, labels = synth(240, 208, patch=40, seed=1)
    split = {"mode": "blocks", "block": 48, "val_fraction": 0.3, "buffer": 12, "seed": 3}
    cfg = load_config(
        {
            "classes": CLASSES,
            "scenes": [{"image": str(scene), "labels": str(labels)}],
            "split": split,
            "model": {"architecture": "pixelnet", "tile": 64, "overlap": 16},
            "training": {"crop": 32, "augment": {"scale": [0.5, 2.0]}},
            "output": str(tmp_path / "m"),
        }
    )
    data = prepare(cfg, load_classes(CLASSES))
    (sp,) = data.splits
    val = np.zeros((240, 208), dtype=bool)
    for r0, c0, r1, c1 in sp.val:
        val[r0:r1, c0:c1] = True
    near = ndimage.binary_dilation(val, structure=np.ones((25, 25), bool))
    rng = np.random.default_rng(0)
    sizes = []
    for _ in range(400):
        size = zoom_size(32, cfg.training.augment, rng)
        _, w = data.sampler.sample(rng, size)
        assert w.height == w.width and w.height in (size, 32)
        assert not near[w.slices()].any()
        sizes.append(w.height)
    assert min(sizes) < 24 and max(sizes) > 48  # zoomed windows were placed both ways
    # a window too large to keep clear of validation falls back to the crop
    _, w = data.sampler.sample(rng, 200)
    assert w.height == 32 and not near[w.slices()].any()


def test_scale_range_is_validated():
    with pytest.raises(ValueError, match="scale is"):
        AugmentConfig(scale=(0.05, 2))


# per-band radiometric augmentation (gain, offset, gamma per sample and band)

WIDE = PerBandConfig(gain=(0.5, 2.0), offset=(-0.5, 0.5), gamma=(0.7, 1 / 0.7), p=1.0)
PLAIN = {"d4": False, "brightness": 0.0, "contrast": 0.0}  # nothing but per_band


def _sample(seed: int, bands: int = 3, n: int = 48):
    """Standardised bands with a nodata block (0, and a blended 0.3 as zoom leaves at edges),
    its validity and labels (IGNORE on nodata)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(bands, n, n)).astype(np.float32)
    valid = np.ones((n, n), bool)
    valid[:10, :] = False
    x[:, :10, :] = 0.0
    x[:, 9, :] = 0.3
    y = rng.integers(0, 5, (n, n)).astype(np.uint8)
    y[~valid] = IGNORE
    return x, valid, y


def test_per_band_factors_are_drawn_within_their_ranges_and_per_band():
    rng = np.random.default_rng(0)
    draws = [draw_per_band(4, WIDE, rng) for _ in range(3000)]
    gain, offset, gamma = (np.stack([d[i] for d in draws]) for i in range(3))  # draws x bands
    for v, (lo, hi) in ((gain, WIDE.gain), (offset, WIDE.offset), (gamma, WIDE.gamma)):
        assert v.dtype == np.float32 and v.shape == (3000, 4)
        assert v.min() >= np.float32(lo) - 1e-6 and v.max() <= np.float32(hi) + 1e-6
        span = hi - lo
        assert v.min() < lo + 0.02 * span and v.max() > hi - 0.02 * span  # whole range drawn
    # gain and gamma log-uniform (a symmetric range in log: as many below 1 as above, and
    # uniform in log), offset uniform
    for v, (lo, hi) in ((gain, WIDE.gain), (gamma, WIDE.gamma)):
        assert abs(np.mean(v < 1) - 0.5) < 0.03
        t = (np.log(v) - np.log(lo)) / (np.log(hi) - np.log(lo))
        assert abs(np.mean(t < 0.25) - 0.25) < 0.03
    assert abs(np.mean(offset < 0) - 0.5) < 0.03 and abs(np.mean(offset < 0.25) - 0.75) < 0.03
    # independent: every band draws its own factors, uncorrelated with the others'
    assert all(len(set(d[0].tolist())) == 4 and len(set(d[2].tolist())) == 4 for d in draws)
    for v in (gain, offset, gamma):
        c = np.corrcoef(v.T)
        assert np.abs(c[np.triu_indices(4, 1)]).max() < 0.08
    assert abs(np.corrcoef(gain[:, 0], gamma[:, 0])[0, 1]) < 0.08
    # p: the share of samples augmented at all
    cfg = WIDE.model_copy(update={"p": 0.3})
    assert abs(np.mean([draw_per_band(4, cfg, rng) is not None for _ in range(3000)]) - 0.3) < 0.03


def test_per_band_applies_gain_and_offset_per_band_and_leaves_labels_and_nodata():
    x, valid, y = _sample(1)
    x0, valid0, y0 = x.copy(), valid.copy(), y.copy()
    cfg = AugmentConfig(**PLAIN, per_band=WIDE.model_copy(update={"gamma": (1.0, 1.0)}))
    xa, ya = augment(x, valid, y, cfg, np.random.default_rng(5))
    assert np.array_equal(ya, y0) and np.array_equal(valid, valid0)  # labels, validity kept
    assert np.array_equal(xa[:, ~valid], x0[:, ~valid])  # nodata pixels exactly as they were
    assert xa.dtype == np.float32
    # gamma 1: each band is an affine map of itself; fit its gain and offset
    fits = [np.polyfit(x0[b][valid], xa[b][valid], 1) for b in range(3)]
    for g, o in fits:
        assert WIDE.gain[0] - 1e-5 <= g <= WIDE.gain[1] + 1e-5
        assert WIDE.offset[0] - 1e-5 <= o <= WIDE.offset[1] + 1e-5
    assert fits[0][0] != fits[1][0] and fits[0][1] != fits[1][1]  # two bands, two draws
    # exactly the factors the same seeded draw gives
    _, _, gamma = f = draw_per_band(3, cfg.per_band, np.random.default_rng(5))
    assert np.all(gamma == 1) and np.array_equal(xa, apply_per_band(x0, valid, *f))
    assert np.allclose([g for g, _ in fits], f[0], atol=1e-4)
    assert np.allclose([o for _, o in fits], f[1], atol=1e-4)


def test_gamma_acts_on_the_robust_range_only():
    r = GAMMA_RANGE
    z = np.linspace(-2 * r, 2 * r, 801, dtype=np.float32)
    x = np.stack([z, z])[:, None, :]
    valid = np.ones((1, z.size), bool)
    one = np.ones(2, np.float32)
    gamma = np.array([0.7, 1 / 0.7], np.float32)
    out = apply_per_band(x, valid, one, np.zeros(2, np.float32), gamma)[:, 0]
    outside = np.abs(z) >= r
    assert np.array_equal(out[:, outside], x[:, 0, outside])  # outliers kept, never clipped
    assert np.all(np.diff(out, axis=1) > 0)  # monotonic: the order of values is kept
    mid = np.argmin(np.abs(z))  # z = 0: u = 1/2 -> 2R (1/2)**gamma - R
    assert np.allclose(out[:, mid], 2 * r * 0.5**gamma - r, atol=1e-5)
    assert out[0, mid] > 0 > out[1, mid]  # gamma < 1 brightens the mid-tones, > 1 darkens
    # gain 1, offset 0, gamma 1: the identity, bit for bit
    xs, vs, _ = _sample(2)
    ident = apply_per_band(xs, vs, np.ones(3, np.float32), np.zeros(3, np.float32), np.ones(3))
    assert np.array_equal(ident, xs)


def test_per_band_off_or_p0_leaves_the_data_unchanged():
    x, valid, y = _sample(3)
    cfg = AugmentConfig(**PLAIN, per_band={"p": 0})
    xa, ya = augment(x.copy(), valid, y, cfg, np.random.default_rng(0))
    assert np.array_equal(xa, x) and np.array_equal(ya, y)
    # off (absent or None): the same draws as before the option existed, and the same dump
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    a = augment(x.copy(), valid, y, AugmentConfig(), r1)
    b = augment(x.copy(), valid, y, AugmentConfig(per_band=None), r2)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert r1.random() == r2.random()
    assert "per_band" not in AugmentConfig(per_band=None).model_dump()
    assert AugmentConfig(per_band={}).model_dump()["per_band"]["p"] == PerBandConfig().p


def test_per_band_draws_are_reproducible_from_the_seed():
    x, valid, y = _sample(4)
    cfg = AugmentConfig(per_band=WIDE.model_copy(update={"p": 0.5}))  # with d4 and jitter

    def run(seed):
        rng = np.random.default_rng(seed)
        return [augment(x.copy(), valid, y, cfg, rng) for _ in range(6)]

    a, b, c = run(11), run(11), run(12)
    same = [
        np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(a, b, strict=True)
    ]
    assert all(same)
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(a, c, strict=True))


@pytest.mark.parametrize(
    "per_band, expect",
    [
        ({"gain": [1.2, 0.8]}, "training.augment.per_band.gain: min must not exceed max"),
        ({"offset": [0.2, -0.2]}, "training.augment.per_band.offset: min must not exceed max"),
        ({"gamma": [1.25, 0.8]}, "training.augment.per_band.gamma: min must not exceed max"),
        ({"gain": [0.1, 2]}, "training.augment.per_band.gain: [min, max] must lie within"),
        ({"gamma": [0.8, 5]}, "training.augment.per_band.gamma: [min, max] must lie within"),
        ({"offset": [-4, 0]}, "training.augment.per_band.offset: [min, max] must lie within"),
        ({"p": 1.5}, "training.augment.per_band.p:"),
        ({"gain": [0.8]}, "training.augment.per_band.gain"),
        ({"gian": [0.8, 1.2]}, "unknown key 'training.augment.per_band.gian'"),
    ],
)
def test_per_band_config_errors_are_one_line(per_band, expect):
    cfg = {"classes": CLASSES, "scenes": [{"image": "a.tif"}], "output": "o"}
    with pytest.raises(GeoSegError) as e:
        load_config({**cfg, "training": {"augment": {"per_band": per_band}}})
    assert expect in str(e.value) and "\n" not in str(e.value)

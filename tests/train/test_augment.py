"""Training augmentation: zoomed crops (window size, resampling of bands, validity and labels)
and where zoomed windows may be placed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from geoseg.core.classes import load_classes
from geoseg.train.augment import augment, resample, zoom_size
from geoseg.train.config import AugmentConfig, load_config
from geoseg.train.train import prepare

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

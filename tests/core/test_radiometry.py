"""Radiometric mappings: exact inverses of known band shifts, ties, extrapolation, errors."""

from __future__ import annotations

import numpy as np
import pytest

from geoseg.core.radiometry import (
    PERCENTILES,
    affine_mapping,
    location_scale,
    match_mapping,
    quantiles_of,
    scene_mapping,
)
from geoseg.errors import GeoSegError


def _bands(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.gamma(3, 40, n), rng.lognormal(4, 0.5, n), rng.normal(500, 80, n)])


def test_scene_mapping_undoes_a_per_band_affine_shift():
    x = _bands()
    gain, offset = np.array([0.7, 1.4, 1.1]), np.array([15.0, -20.0, 3.0])
    y = x * gain[:, None] + offset[:, None]
    m = scene_mapping(quantiles_of(y), quantiles_of(x))
    np.testing.assert_allclose(m.apply(y.copy()), x, rtol=1e-9, atol=1e-7)
    d = m.describe()["bands"]
    np.testing.assert_allclose([b["gain"] for b in d], 1 / gain, rtol=1e-9)


def test_scene_mapping_without_training_quantiles_uses_mean_and_std():
    x = _bands()[2:]  # a normal band: its IQR / 1.349 is its standard deviation
    m = scene_mapping(quantiles_of(2 * x + 7), mean=[x.mean()], std=[x.std()])
    z = m.apply(2 * x + 7)
    assert abs(z.mean() - x.mean()) < 0.02 * x.std() and abs(z.std() / x.std() - 1) < 0.03


def test_match_mapping_undoes_a_monotonic_non_linear_shift_at_the_quantiles():
    x = _bands()
    y = 255 * (x / x.max(axis=1, keepdims=True)) ** 1.3 + 5
    m = match_mapping(quantiles_of(y), quantiles_of(x))
    got = m.apply(y.copy())
    # equal at the knots; between them only the curvature within one percentile
    np.testing.assert_allclose(quantiles_of(got)[:, 1:-1], quantiles_of(x)[:, 1:-1], rtol=2e-3)
    assert np.corrcoef(got[0], x[0])[0, 1] > 0.999


def test_match_mapping_collapses_ties_of_integer_bands():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, size=(1, 5000)).astype(float)  # 6 values: many equal quantiles
    m = match_mapping(quantiles_of(x), quantiles_of(x * 10))
    assert len(m.src[0]) <= 6 and np.all(np.diff(m.src[0]) > 0)
    got = m.apply(x.copy())
    assert np.all(np.diff(np.unique(got)) > 0)  # still monotonic


def test_mapping_extrapolates_linearly_beyond_the_knots():
    m = affine_mapping([2.0], [1.0])
    np.testing.assert_allclose(m.apply(np.array([[-10.0, 0.0, 0.5, 100.0]])), [[-19, 1, 2, 201]])


def test_quantiles_and_errors():
    q = quantiles_of(_bands())
    assert q.shape == (3, len(PERCENTILES)) and np.all(np.diff(q, axis=1) >= 0)
    with pytest.raises(GeoSegError, match="no valid pixels"):
        quantiles_of(np.zeros((3, 0)))
    with pytest.raises(GeoSegError, match="constant"):
        location_scale(quantiles_of(np.ones((1, 100))))
    with pytest.raises(GeoSegError, match="positive"):
        affine_mapping([-1.0], [0.0])
    with pytest.raises(GeoSegError, match="bands"):
        match_mapping(q, q[:2])
    with pytest.raises(GeoSegError, match="3 bands"):
        affine_mapping([1, 1, 1], [0, 0, 0]).apply(np.zeros((2, 4)))


def test_radiometric_distance_and_the_auto_choice():
    from geoseg.core.radiometry import (
        AUTO_FLOOR,
        PERCENTILES,
        choose_auto,
        radiometric_distance,
    )

    rng = np.random.default_rng(0)
    x = rng.normal(100, 20, size=(3, 50_000))
    q = np.percentile(x, PERCENTILES, axis=1).T
    assert np.allclose(radiometric_distance(q, q), 0)
    # a shift of one training spread in band 2, and a doubled spread in band 3
    y = x.copy()
    y[1] += 20
    y[2] = 100 + (y[2] - 100) * 2
    d = radiometric_distance(np.percentile(y, PERCENTILES, axis=1).T, q)
    assert d[0] < 0.02 and abs(d[1] - 1) < 0.05 and abs(d[2] - np.log(2)) < 0.05
    mode, why = choose_auto(np.percentile(y, PERCENTILES, axis=1).T, q, None)
    assert mode == "scene" and why.startswith("band 2 is 1.0")
    assert choose_auto(q, q, None)[0] == "bundle"
    near = x + 0.2 * 20  # 0.2 spreads: below the floor
    assert choose_auto(np.percentile(near, PERCENTILES, axis=1).T, q, 0)[0] == "bundle"
    assert AUTO_FLOOR > 0.2

"""geoseg.core.metrics: against scikit-learn, by hand, and the worked example of Olofsson et al.
2014.

Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014), Good practices for estimating area
and assessing accuracy of land change, Remote Sensing of Environment 148:42-57, section 5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from geoseg.core import metrics as mx

# Olofsson et al. 2014, table 8: sample counts, rows = map (strata), columns = reference.
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])  # 30 m pixels
HA_PER_PIXEL = 0.09


def _random_maps(seed: int, n: int = 6, size: int = 5000):
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, n, size)
    mapped = np.where(rng.random(size) < 0.7, ref, rng.integers(0, n, size))
    mapped[rng.random(size) < 0.05] = -1  # nodata: left out
    return mapped, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_is_sklearns_transposed(seed):
    mapped, ref = _random_maps(seed)
    ok = mapped >= 0
    cm = mx.confusion_matrix(mapped, ref, 6)
    sk = skm.confusion_matrix(ref[ok], mapped[ok], labels=range(6))  # rows = reference
    np.testing.assert_array_equal(cm, sk.T)
    assert cm.sum() == ok.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    mapped, ref = _random_maps(seed)
    ok = mapped >= 0
    y, p = ref[ok], mapped[ok]
    acc = mx.accuracy(mx.confusion_matrix(mapped, ref, 6))
    labels = list(range(6))
    assert acc.oa == pytest.approx(skm.accuracy_score(y, p))
    np.testing.assert_allclose(acc.ua, skm.precision_score(y, p, labels=labels, average=None))
    np.testing.assert_allclose(acc.pa, skm.recall_score(y, p, labels=labels, average=None))
    np.testing.assert_allclose(acc.f1, skm.f1_score(y, p, labels=labels, average=None))
    np.testing.assert_allclose(acc.iou, skm.jaccard_score(y, p, labels=labels, average=None))
    assert acc.miou == pytest.approx(skm.jaccard_score(y, p, labels=labels, average="macro"))
    assert acc.kappa == pytest.approx(skm.cohen_kappa_score(y, p))


def test_blockwise_accumulation_equals_whole_map():
    rng = np.random.default_rng(7)
    ref = rng.integers(-1, 5, (300, 410))
    mapped = np.where(rng.random(ref.shape) < 0.8, ref, rng.integers(-1, 5, ref.shape))
    whole = mx.confusion_matrix(mapped, ref, 5)
    parts = []
    for r in range(0, 300, 64):
        for c in range(0, 410, 96):
            acc = mx.ConfusionAccumulator(5)
            parts.append(acc.add(mapped[r : r + 64, c : c + 96], ref[r : r + 64, c : c + 96]))
    total = mx.ConfusionAccumulator(5)
    for a in reversed(parts):  # any order
        total += a
    np.testing.assert_array_equal(total.matrix, whole)
    assert total.matrix.sum() == ((mapped >= 0) & (ref >= 0)).sum()


def test_absent_classes_are_undefined_not_zero():
    cm = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]])  # class 2: neither mapped nor referenced
    acc = mx.accuracy(cm)
    assert math.isnan(acc.ua[2]) and math.isnan(acc.pa[2]) and math.isnan(acc.iou[2])
    assert acc.miou == pytest.approx((5 / 8 + 4 / 7) / 2)


def test_disagreement_by_hand():
    # Pontius & Millones 2011 with rows = map: p1. = 0.4, p.1 = 0.5, p11 = 0.3, p22 = 0.4
    d = mx.disagreement(np.array([[0.3, 0.1], [0.2, 0.4]]))
    assert d.quantity == pytest.approx(0.1)  # (|0.4 - 0.5| + |0.6 - 0.5|) / 2
    assert d.allocation == pytest.approx(0.2)  # (2 min(0.1, 0.2) + 2 min(0.2, 0.1)) / 2
    np.testing.assert_allclose(d.per_class_quantity, [0.1, 0.1])


@pytest.mark.parametrize("seed", range(5))
def test_quantity_plus_allocation_is_one_minus_oa(seed):
    cm = np.random.default_rng(seed).integers(0, 50, (7, 7))
    acc = mx.accuracy(cm)
    d = acc.disagreement
    assert d.quantity + d.allocation == pytest.approx(1 - acc.oa)
    assert d.quantity >= 0 and d.allocation >= 0


def _olofsson():
    return mx.stratified_estimates(OLOFSSON_COUNTS, OLOFSSON_PIXELS)


def test_olofsson_area_proportions_table9():
    est = _olofsson()
    p = est.p
    assert p.sum(axis=1) == pytest.approx(OLOFSSON_PIXELS / OLOFSSON_PIXELS.sum())
    # table 9 (4 decimals): diagonal and column totals
    np.testing.assert_allclose(np.diag(p), [0.0176, 0.0110, 0.2967, 0.6212], atol=5e-5)
    np.testing.assert_allclose(est.area_proportion, [0.0235, 0.0130, 0.3175, 0.6460], atol=5e-5)


def test_olofsson_published_accuracies():
    est = _olofsson()
    z = mx.Z95
    assert z == 1.96
    # OA 0.95 +- 0.02 (computed 0.9465 +- 0.0185)
    assert round(est.oa, 2) == 0.95 and round(z * est.oa_se, 2) == 0.02
    assert est.oa == pytest.approx(0.94651, abs=1e-5)
    # user's accuracy: 0.88 +- 0.07, 0.73 +- 0.10, 0.93 +- 0.04, 0.96 +- 0.02
    np.testing.assert_array_equal(np.round(est.ua, 2), [0.88, 0.73, 0.93, 0.96])
    np.testing.assert_array_equal(np.round(z * est.ua_se, 2), [0.07, 0.10, 0.04, 0.02])
    # producer's accuracy: 0.75, 0.85, 0.93, 0.96; CIs of deforestation and stable forest
    # as published, +- 0.21 and +- 0.03
    np.testing.assert_array_equal(np.round(est.pa, 2), [0.75, 0.85, 0.93, 0.96])
    assert round(z * est.pa_se[0], 2) == 0.21
    assert round(z * est.pa_se[2], 2) == 0.03


def test_olofsson_pa_intervals_from_equation_7_by_hand():
    """The paper prints +-0.23 (forest gain) and +-0.01 (stable non-forest) as we recall it,
    which its own equation 7 does not give (neither with n_i. nor n_i. - 1); so these two are
    checked against eq. 7 evaluated by hand here, not against the printed digits."""
    n, big_n = OLOFSSON_COUNTS.astype(float), OLOFSSON_PIXELS.astype(float)
    ni = n.sum(axis=1)
    est = _olofsson()
    for j, expect in ((1, 0.254), (3, 0.018)):
        n_hat = sum(big_n[i] * n[i, j] / ni[i] for i in range(4))
        pa = (big_n[j] * n[j, j] / ni[j]) / n_hat
        u = n[j, j] / ni[j]
        own = big_n[j] ** 2 * (1 - pa) ** 2 * u * (1 - u) / (ni[j] - 1)
        others = sum(
            big_n[i] ** 2 * (n[i, j] / ni[i]) * (1 - n[i, j] / ni[i]) / (ni[i] - 1)
            for i in range(4)
            if i != j
        )
        se = math.sqrt(own + pa**2 * others) / n_hat
        assert est.pa[j] == pytest.approx(pa)
        assert est.pa_se[j] == pytest.approx(se)
        assert round(1.96 * se, 3) == expect


def test_olofsson_published_areas():
    """Error-adjusted areas: 21,158 +- 6,158 ha (deforestation), 11,686 +- 3,756 (gain),
    285,770 +- 15,510 (stable forest), 581,386 +- 16,282 (stable non-forest)."""
    area, se = _olofsson().area(HA_PER_PIXEL)
    np.testing.assert_array_equal(np.round(area), [21_158, 11_686, 285_770, 581_386])
    np.testing.assert_array_equal(np.round(1.96 * se), [6_158, 3_756, 15_510, 16_282])
    assert area.sum() == pytest.approx(OLOFSSON_PIXELS.sum() * HA_PER_PIXEL)
    # the mapped deforestation area (18,000 ha) is an underestimate
    assert area[0] - OLOFSSON_PIXELS[0] * HA_PER_PIXEL == pytest.approx(3_158, abs=0.5)


def test_olofsson_sample_size_eq13():
    """Expected UA 0.70, 0.60, 0.90, 0.95 and a target SE(OA) of 0.01 give n = 641."""
    assert mx.sample_size(OLOFSSON_PIXELS, [0.7, 0.6, 0.9, 0.95], 0.01) == 641
    # by hand: (0.02*0.4583 + 0.015*0.4899 + 0.32*0.3 + 0.645*0.2179 = 0.2531) / 0.01 -> 640.6
    assert mx.sample_size(OLOFSSON_PIXELS, 0.9, 0.01) == 900  # (0.3 / 0.01)^2


def test_allocation_minimum_for_rare_classes_rest_proportional():
    alloc = mx.allocate(641, OLOFSSON_PIXELS, min_per_class=50)
    assert alloc.sum() == 641
    assert alloc[0] == 50 and alloc[1] == 50  # proportional alone gives 13 and 10
    rest = 641 - 100
    share = OLOFSSON_PIXELS[2:] / OLOFSSON_PIXELS[2:].sum() * rest
    assert np.abs(alloc[2:] - share).max() < 1
    # a class smaller than the minimum gives all its pixels; an empty class nothing
    alloc = mx.allocate(100, np.array([3, 0, 1000, 5000]), min_per_class=20)
    assert alloc.tolist()[:2] == [3, 0] and alloc.sum() == 100 and alloc[2] >= 20
    with pytest.raises(ValueError, match="less than"):
        mx.allocate(60, OLOFSSON_PIXELS, min_per_class=50)
    with pytest.raises(ValueError, match="cannot draw"):
        mx.allocate(10, np.array([3, 4]), min_per_class=1)


def test_stratified_guards():
    with pytest.raises(ValueError, match="no labelled sample"):
        mx.stratified_estimates(np.array([[5, 1], [0, 0]]), np.array([100, 900]))
    est = mx.stratified_estimates(np.array([[1, 0], [2, 30]]), np.array([100, 900]))
    assert math.isnan(est.ua_se[0]) and math.isnan(est.oa_se)  # one unit: no variance
    assert est.ua[0] == 1.0 and not math.isnan(est.ua_se[1])
    # a map class with no pixels (W = 0) and no sample is fine
    est = mx.stratified_estimates(
        np.array([[5, 1, 0], [1, 9, 0], [0, 0, 0]]), np.array([100, 900, 0])
    )
    assert est.area_proportion.sum() == pytest.approx(1.0) and math.isnan(est.ua[2])


def test_metrics_is_pure():
    """The core imports neither Dask nor torch (nor anything of geoseg's engine)."""
    import subprocess
    import sys

    code = (
        "import sys, geoseg.core.metrics; bad = [m for m in ('dask', 'distributed', 'torch', "
        "'rasterio') if m in sys.modules]; assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

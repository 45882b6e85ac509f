"""Accuracy of a class map against reference labels: pure numpy, no Dask, no torch.

Orientation: every matrix here has **rows = map classes, columns = reference classes**, the
convention of the remote-sensing literature (Congalton; Olofsson et al. 2014). scikit-learn's
``confusion_matrix(y_true, y_pred)`` is the transpose (rows = reference/"true").

Two kinds of figures:

* from a matrix of counts (pixels or sample units): overall accuracy (OA), user's accuracy
  (UA = diagonal / row total, 1 - commission error), producer's accuracy (PA = diagonal /
  column total, 1 - omission error), F1 (= Dice), IoU, mIoU, quantity and allocation
  disagreement (Pontius & Millones 2011), and kappa as a legacy figure only;
* the stratified estimators of Olofsson et al. 2014 (Remote Sensing of Environment 148:42-57)
  for a stratified random sample with the map classes as strata: estimated area proportions
  p_ij = W_i n_ij / n_i., OA, UA, PA and error-adjusted areas, each with a standard error.

Class indices are 0..n-1 (positions in a class list); a negative index means "not compared".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ORIENTATION = "rows = map classes, columns = reference classes"
Z95 = 1.96  # two-sided 95 % normal quantile, as used by Olofsson et al. (2014)
KAPPA_NOTE = (
    "kappa is reported as a legacy figure only: it is not recommended for accuracy "
    "assessment (Pontius & Millones 2011; Olofsson et al. 2014); use OA, UA, PA and "
    "quantity/allocation disagreement"
)


def pair_counts(map_idx: np.ndarray, ref_idx: np.ndarray, n: int) -> np.ndarray:
    """Counts of all (map, reference) pairs as an (n+1) x (n+1) matrix in which index n stands
    for "no value" (any negative index): ``[:n, :n]`` is the confusion matrix, ``[n, :n]``
    counts reference values where the map has none and ``[:n, n]`` the reverse."""
    m = np.asarray(map_idx).ravel()
    r = np.asarray(ref_idx).ravel()
    if m.shape != r.shape:
        raise ValueError(f"map and reference differ in size: {m.shape} vs {r.shape}")
    code = np.where(m >= 0, m, n).astype(np.intp)
    code *= n + 1
    code += np.where(r >= 0, r, n)
    return np.bincount(code, minlength=(n + 1) ** 2).reshape(n + 1, n + 1)


def confusion_matrix(map_idx: np.ndarray, ref_idx: np.ndarray, n: int) -> np.ndarray:
    """Counts (int64, n x n, rows = map, columns = reference) of the pairs where both indices
    are >= 0. ``sklearn.metrics.confusion_matrix(ref, map)`` is the transpose of this."""
    return pair_counts(map_idx, ref_idx, n)[:n, :n].astype(np.int64)


class ConfusionAccumulator:
    """A confusion matrix built from pieces (blocks, workers) in any order: counts add."""

    def __init__(self, n: int):
        self.n = n
        self.matrix = np.zeros((n, n), dtype=np.int64)

    def add(self, map_idx: np.ndarray, ref_idx: np.ndarray) -> ConfusionAccumulator:
        self.matrix += confusion_matrix(map_idx, ref_idx, self.n)
        return self

    def add_matrix(self, counts: np.ndarray) -> ConfusionAccumulator:
        counts = np.asarray(counts)
        if counts.shape != (self.n, self.n):
            raise ValueError(f"expected a {self.n}x{self.n} matrix, got {counts.shape}")
        self.matrix += counts.astype(np.int64)
        return self

    def merge(self, other: ConfusionAccumulator) -> ConfusionAccumulator:
        return self.add_matrix(other.matrix)

    __iadd__ = merge


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def proportions(cm: np.ndarray) -> np.ndarray:
    """The matrix as shares of its total (counts or already proportions)."""
    cm = np.asarray(cm, dtype=float)
    total = cm.sum()
    return cm / total if total > 0 else np.full(cm.shape, np.nan)


def overall_accuracy(cm: np.ndarray) -> float:
    return float(np.trace(proportions(cm)))


def users_accuracy(cm: np.ndarray) -> np.ndarray:
    """Per map class: diagonal / row total (NaN for a class never mapped)."""
    cm = np.asarray(cm, dtype=float)
    return _ratio(np.diag(cm), cm.sum(axis=1))


def producers_accuracy(cm: np.ndarray) -> np.ndarray:
    """Per reference class: diagonal / column total (NaN for a class never in the reference)."""
    cm = np.asarray(cm, dtype=float)
    return _ratio(np.diag(cm), cm.sum(axis=0))


def f1_scores(cm: np.ndarray) -> np.ndarray:
    """Harmonic mean of UA and PA, 2 n_ii / (n_i. + n_.i); the same as the Dice coefficient."""
    cm = np.asarray(cm, dtype=float)
    return _ratio(2 * np.diag(cm), cm.sum(axis=1) + cm.sum(axis=0))


def iou_scores(cm: np.ndarray) -> np.ndarray:
    """Intersection over union (Jaccard), n_ii / (n_i. + n_.i - n_ii)."""
    cm = np.asarray(cm, dtype=float)
    d = np.diag(cm)
    return _ratio(d, cm.sum(axis=1) + cm.sum(axis=0) - d)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over the classes present in the map or the reference (absent ones have no
    IoU and are left out, rather than counted as 0 or 1)."""
    iou = iou_scores(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else math.nan


def kappa(cm: np.ndarray) -> float:
    """Cohen's kappa: legacy only, see :data:`KAPPA_NOTE`."""
    p = proportions(cm)
    po, pe = np.trace(p), float(p.sum(axis=1) @ p.sum(axis=0))
    return float((po - pe) / (1 - pe)) if pe < 1 else math.nan


@dataclass(frozen=True)
class Disagreement:
    """Pontius & Millones (2011): total disagreement 1 - OA = quantity + allocation."""

    quantity: float
    allocation: float
    per_class_quantity: np.ndarray  # q_g = |p_g. - p_.g|
    per_class_allocation: np.ndarray  # a_g = 2 min(p_g. - p_gg, p_.g - p_gg)


def disagreement(cm: np.ndarray) -> Disagreement:
    p = proportions(cm)
    rows, cols, d = p.sum(axis=1), p.sum(axis=0), np.diag(p)
    q = np.abs(rows - cols)
    a = 2 * np.minimum(rows - d, cols - d)
    return Disagreement(float(q.sum() / 2), float(a.sum() / 2), q, a)


@dataclass(frozen=True)
class Accuracy:
    """Figures from one matrix of counts (or of estimated proportions)."""

    matrix: np.ndarray
    oa: float
    ua: np.ndarray
    pa: np.ndarray
    f1: np.ndarray
    iou: np.ndarray
    miou: float
    kappa: float
    disagreement: Disagreement


def accuracy(cm: np.ndarray) -> Accuracy:
    cm = np.asarray(cm)
    return Accuracy(
        cm,
        overall_accuracy(cm),
        users_accuracy(cm),
        producers_accuracy(cm),
        f1_scores(cm),
        iou_scores(cm),
        mean_iou(cm),
        kappa(cm),
        disagreement(cm),
    )


def mapped_area_ha(pixel_counts: np.ndarray, pixel_area_ha: float | None) -> np.ndarray | None:
    """Mapped area per class, hectares (None where the pixel area is unknown)."""
    if pixel_area_ha is None:
        return None
    return np.asarray(pixel_counts, dtype=float) * pixel_area_ha


# --- Olofsson et al. 2014: stratified random sampling with the map classes as strata --------


@dataclass(frozen=True)
class StratifiedEstimate:
    """Estimates with standard errors (SE); a 95 % CI is the estimate +- Z95 * SE.

    Equation numbers are those of Olofsson et al. (2014): 4 (p_ij), 1-3 (OA, UA, PA),
    5-7 (their variances), 9-11 (area proportions, their SE, areas)."""

    counts: np.ndarray  # n_ij, rows = strata = map classes, columns = reference
    stratum_pixels: np.ndarray  # N_i., mapped pixels per class
    p: np.ndarray  # estimated area proportions p_ij = W_i n_ij / n_i.
    oa: float
    oa_se: float
    ua: np.ndarray
    ua_se: np.ndarray
    pa: np.ndarray
    pa_se: np.ndarray
    area_proportion: np.ndarray  # p_.j
    area_proportion_se: np.ndarray

    @property
    def weights(self) -> np.ndarray:
        return self.stratum_pixels / self.stratum_pixels.sum()

    @property
    def sample_sizes(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def area(self, pixel_area: float) -> tuple[np.ndarray, np.ndarray]:
        """Error-adjusted area per reference class and its SE, in the unit of ``pixel_area``
        (eq. 11: A_j = A p_.j, S(A_j) = A S(p_.j), A = total mapped area)."""
        total = float(self.stratum_pixels.sum()) * pixel_area
        return self.area_proportion * total, self.area_proportion_se * total


def stratified_estimates(counts: np.ndarray, stratum_pixels: np.ndarray) -> StratifiedEstimate:
    """Olofsson et al. (2014) estimators from sample counts ``counts`` (rows = map class =
    stratum, columns = reference class) and the mapped pixels of each stratum.

    A stratum with mapped pixels but no sample cannot be estimated (ValueError); a stratum
    with one sample unit gives estimates with an undefined (NaN) standard error.
    """
    n = np.asarray(counts, dtype=float)
    big_n = np.asarray(stratum_pixels, dtype=float)
    k = n.shape[0]
    if n.shape != (k, k) or big_n.shape != (k,):
        raise ValueError(
            f"counts must be k x k and stratum_pixels of length k, got {n.shape} and {big_n.shape}"
        )
    ni = n.sum(axis=1)
    empty = (big_n > 0) & (ni == 0)
    if empty.any():
        raise ValueError(
            f"strata {np.flatnonzero(empty).tolist()} have mapped pixels but no "
            "labelled sample unit"
        )
    w = big_n / big_n.sum()
    share = _ratio(n, ni[:, None])  # n_ij / n_i.
    share = np.where(ni[:, None] > 0, share, 0.0)
    p = w[:, None] * share  # eq. 4
    dof = np.where(ni > 1, ni - 1, np.nan)  # n_i. - 1; NaN where the variance is undefined
    var_cell = share * (1 - share) / dof[:, None]  # (n_ij/n_i.)(1 - n_ij/n_i.)/(n_i. - 1)
    var_cell = np.where(big_n[:, None] > 0, var_cell, 0.0)  # empty strata contribute nothing
    u = np.diag(share).copy()
    u[ni == 0] = np.nan
    oa = float(np.trace(p))  # eq. 1
    oa_var = float(np.sum((w**2 * np.diag(var_cell))[big_n > 0]))  # eq. 5
    ua_se = np.sqrt(np.diag(var_cell))  # eq. 6
    ua_se = np.where(ni > 0, ua_se, np.nan)
    col = p.sum(axis=0)  # eq. 9: p_.j
    pa = _ratio(np.diag(p), col)  # eq. 3
    col_se = np.sqrt((w[:, None] ** 2 * var_cell).sum(axis=0))  # eq. 10
    # eq. 7, with N_.j estimated as sum_i N_i. n_ij / n_i.
    n_hat = (big_n[:, None] * share).sum(axis=0)
    pa_var = np.full(k, np.nan)
    for j in range(k):
        if n_hat[j] <= 0:
            continue
        others = sum(big_n[i] ** 2 * var_cell[i, j] for i in range(k) if i != j)
        own = big_n[j] ** 2 * (1 - pa[j]) ** 2 * var_cell[j, j] if big_n[j] > 0 else 0.0
        pa_var[j] = (own + pa[j] ** 2 * others) / n_hat[j] ** 2
    return StratifiedEstimate(
        n.astype(np.int64),
        big_n,
        p,
        oa,
        math.sqrt(oa_var),
        u,
        ua_se,
        pa,
        np.sqrt(pa_var),
        col,
        col_se,
    )


def sample_size(
    stratum_pixels: np.ndarray, expected_ua: np.ndarray | float, target_se: float = 0.01
) -> int:
    """Olofsson et al. (2014) eq. 13: n = (sum_i W_i S_i / S(O))^2 with S_i = sqrt(U_i (1 -
    U_i)), U_i the expected user's accuracy of class i and S(O) the target standard error of
    overall accuracy; rounded up."""
    big_n = np.asarray(stratum_pixels, dtype=float)
    u = np.broadcast_to(np.asarray(expected_ua, dtype=float), big_n.shape)
    if not (0 < target_se < 1) or ((u < 0) | (u > 1)).any():
        raise ValueError("expected user's accuracies must be in [0, 1] and target_se in (0, 1)")
    w = big_n / big_n.sum()
    return math.ceil(float((w * np.sqrt(u * (1 - u))).sum() / target_se) ** 2 - 1e-9)


def allocate(n: int, stratum_pixels: np.ndarray, min_per_class: int = 50) -> np.ndarray:
    """Sample units per stratum, after Olofsson et al. (2014, section 5.1.2): each mapped
    class gets at least ``min_per_class`` (or all its pixels, if fewer), the rest is shared in
    proportion to mapped area (largest remainders), and no stratum gets more than it has."""
    big_n = np.asarray(stratum_pixels, dtype=np.int64)
    if n > big_n.sum():
        raise ValueError(f"cannot draw {n} sample units from {int(big_n.sum())} mapped pixels")
    floor = np.minimum(big_n, min_per_class)
    if floor.sum() > n:
        raise ValueError(
            f"n={n} is less than the {int(floor.sum())} needed for {min_per_class} per mapped class"
        )
    alloc = np.zeros(len(big_n), dtype=np.int64)
    fixed = big_n == 0
    while True:
        free = ~fixed
        rest = n - alloc[fixed].sum()
        share = np.zeros(len(big_n))
        if free.any():
            share[free] = rest * big_n[free] / big_n[free].sum()
        low = free & (share < floor)
        high = free & (share > big_n)
        if not (low.any() or high.any()):
            break
        alloc[low], alloc[high] = floor[low], big_n[high]
        fixed |= low | high
    whole = np.floor(share).astype(np.int64)
    whole[fixed] = alloc[fixed]
    left = int(n - whole.sum())
    if left > 0:  # largest remainders among the proportional strata
        frac = np.where(~fixed & (whole < big_n), share - np.floor(share), -1.0)
        order = [i for i in np.argsort(-frac, kind="stable") if frac[i] >= 0]
        whole[order[:left]] += 1
    return whole


# --- McNemar's test: two maps' paired outcomes on the same reference units ----------------

MCNEMAR_EXACT_BELOW = 25  # discordant pairs below which the exact binomial p is the p-value


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of two maps A and B scored on the same reference units: ``a_only`` is
    the number right in A and wrong in B (b of the usual 2 x 2 table), ``b_only`` the
    reverse (c). Under H0 (equal accuracy) a_only ~ Binomial(a_only + b_only, 1/2)."""

    both_right: int
    a_only: int
    b_only: int
    both_wrong: int
    z: float  # (|b - c| - 1) / sqrt(b + c), continuity corrected; > 0 when A is more accurate
    chi2: float  # z ** 2, 1 degree of freedom
    p_chi2: float
    p_exact: float  # two-sided exact binomial test (scipy.stats.binomtest)
    p: float  # p_exact when b + c < MCNEMAR_EXACT_BELOW, else p_chi2
    method: str

    @property
    def n(self) -> int:
        return self.both_right + self.a_only + self.b_only + self.both_wrong


def mcnemar(both_right: int, a_only: int, b_only: int, both_wrong: int) -> McNemar:
    """McNemar's test (Edwards' continuity correction) with the exact binomial p-value."""
    from scipy.stats import binomtest, chi2

    b, c = int(a_only), int(b_only)
    d = b + c
    if d == 0:
        z = stat = 0.0
        p_chi2 = p_exact = 1.0
    else:
        corrected = max(abs(b - c) - 1, 0)
        z = math.copysign(corrected / math.sqrt(d), b - c)
        stat = corrected**2 / d
        p_chi2 = float(chi2.sf(stat, 1))
        p_exact = float(binomtest(b, d, 0.5).pvalue)
    exact = d < MCNEMAR_EXACT_BELOW
    return McNemar(
        int(both_right),
        b,
        c,
        int(both_wrong),
        z,
        stat,
        p_chi2,
        p_exact,
        p_exact if exact else p_chi2,
        "exact binomial" if exact else "chi-square, continuity corrected",
    )

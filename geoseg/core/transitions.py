"""Transition matrices and their components of change (Pontius, Shusas & McEachern 2004).

A transition matrix ``T`` has **rows = the earlier date's classes ("from"), columns = the later
date's ("to")**, over one class list for both dates; entries are pixels or hectares. Per class j:

* persistence P_j = T_jj;
* gross loss L_j = row total - T_jj (area that was j and became another class);
* gross gain G_j = column total - T_jj (area that became j);
* net change N_j = G_j - L_j (signed: > 0 grew; Pontius reports |N_j|);
* swap S_j = 2 min(G_j, L_j) (change that relocates a class without altering its quantity);
* total change C_j = G_j + L_j = |N_j| + S_j.

Over the landscape, total change = sum_j G_j = sum_j L_j (the off-diagonal total), net =
sum_j |N_j| / 2 and swap = sum_j S_j / 2, so total change = net + swap. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Components:
    matrix: np.ndarray
    persistence: np.ndarray
    gain: np.ndarray
    loss: np.ndarray
    net: np.ndarray
    swap: np.ndarray

    @property
    def before(self) -> np.ndarray:
        """Each class's total on the earlier date (row sums)."""
        return self.matrix.sum(axis=1)

    @property
    def after(self) -> np.ndarray:
        """Each class's total on the later date (column sums)."""
        return self.matrix.sum(axis=0)

    @property
    def total_change(self) -> np.ndarray:
        return self.gain + self.loss

    def landscape(self) -> dict[str, float]:
        """Totals over all classes: total = net + swap, plus persistence and the extent."""
        return {
            "extent": float(self.matrix.sum()),
            "persistence": float(self.persistence.sum()),
            "total_change": float(self.gain.sum()),
            "net_change": float(np.abs(self.net).sum() / 2),
            "swap": float(self.swap.sum() / 2),
        }


def components(matrix: np.ndarray) -> Components:
    t = np.asarray(matrix, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"a transition matrix is square, got {t.shape}")
    p = np.diag(t).copy()
    gain = t.sum(axis=0) - p
    loss = t.sum(axis=1) - p
    return Components(t, p, gain, loss, gain - loss, 2 * np.minimum(gain, loss))

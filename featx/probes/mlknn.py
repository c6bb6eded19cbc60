"""ML-kNN (Zhang & Zhou 2007, Pattern Recognition 40(7)) on precomputed neighbour lists.

For each label l, with smoothing s (1 in the paper and here):

* prior ``P(H1_l) = (s + #positives) / (2 s + m)``;
* for every fitting point i (never its own neighbour) ``C_il`` = how many of its k
  neighbours carry l; ``c1[l, j]`` / ``c0[l, j]`` = how many fitting points with / without
  l have ``C_il = j``;
* likelihoods ``P(E_j | H1_l) = (s + c1[l, j]) / (s (k + 1) + sum_p c1[l, p])`` (same for H0);
* posterior of a query with count j: ``P(H1) P(E_j|H1) / (P(H1) P(E_j|H1) + P(H0) P(E_j|H0))``,
  a real probability, usable for AUROC.

Unknown labels (NaN) are left out of the prior and of the tables for that label, and a
neighbour whose label is unknown does not count towards C. The scikit-multilearn
implementation is not used (it crashes on current scikit-learn).
"""

from __future__ import annotations

import numpy as np

from featx.probes.features import ProbeError


class MLkNN:
    """ML-kNN fitted from neighbour index lists (any backend's)."""

    def __init__(self, k: int = 10, smoothing: float = 1.0) -> None:
        if k < 1:
            raise ProbeError(f"ML-kNN needs k >= 1, got {k}")
        self.k = k
        self.s = float(smoothing)

    @staticmethod
    def counts(neighbour_idx: np.ndarray, bank_labels: np.ndarray, k: int) -> np.ndarray:
        """``(nq, C)`` number of the first ``k`` neighbours carrying each label."""
        known_positive = np.nan_to_num(np.asarray(bank_labels, dtype=np.float32)) > 0.5
        out = np.zeros((neighbour_idx.shape[0], known_positive.shape[1]), dtype=np.int64)
        for start in range(0, neighbour_idx.shape[0], 8192):
            out[start : start + 8192] = known_positive[neighbour_idx[start : start + 8192, :k]].sum(1)
        return out

    def fit(self, bank_labels: np.ndarray, fit_neighbours: np.ndarray, fit_rows: np.ndarray | None = None) -> MLkNN:
        """Estimate prior and likelihood tables.

        ``bank_labels`` (m, C) are the memory bank's labels; ``fit_neighbours`` (f, >=k) the
        leave-one-out neighbour lists (indices into the bank) of the fitting points, whose
        bank rows are ``fit_rows`` (default: all m rows, in order).
        """
        labels = np.asarray(bank_labels, dtype=np.float64)
        self.bank_labels = labels
        if fit_rows is None:
            fit_rows = np.arange(labels.shape[0])
        if fit_neighbours.shape[0] != len(fit_rows):
            raise ProbeError("one neighbour list per fitting point is needed")
        if fit_neighbours.shape[1] < self.k:
            raise ProbeError(f"neighbour lists hold {fit_neighbours.shape[1]} entries, k={self.k}")
        s, k = self.s, self.k
        known = ~np.isnan(labels)
        positives = np.nansum(labels, axis=0)
        m_known = known.sum(0)
        self.prior = (s + positives) / (2 * s + m_known)
        count = self.counts(fit_neighbours, labels, k)  # (f, C)
        fit_labels = labels[fit_rows]
        n_classes = labels.shape[1]
        c1 = np.zeros((n_classes, k + 1))
        c0 = np.zeros((n_classes, k + 1))
        for c in range(n_classes):
            y = fit_labels[:, c]
            c1[c] = np.bincount(count[y == 1, c], minlength=k + 1)[: k + 1]
            c0[c] = np.bincount(count[y == 0, c], minlength=k + 1)[: k + 1]
        self.c1, self.c0 = c1, c0
        self.like1 = (s + c1) / (s * (k + 1) + c1.sum(1, keepdims=True))
        self.like0 = (s + c0) / (s * (k + 1) + c0.sum(1, keepdims=True))
        return self

    def predict_proba(self, neighbours: np.ndarray) -> np.ndarray:
        """``(nq, C)`` posteriors P(label | neighbour counts) for queries' neighbour lists."""
        count = self.counts(neighbours, self.bank_labels, self.k)
        cols = np.arange(count.shape[1])[None, :]
        p1 = self.prior[None, :] * self.like1[cols, count]
        p0 = (1 - self.prior)[None, :] * self.like0[cols, count]
        return (p1 / (p1 + p0)).astype(np.float32)

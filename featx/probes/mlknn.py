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
neighbour whose label is unknown does not count towards C. The counting runs in torch on
the device the neighbour lists live on (a GPU's after a GPU search); the tables are small
and kept in float64. The scikit-multilearn implementation is not used (it crashes on
current scikit-learn).
"""

from __future__ import annotations

import numpy as np
import torch

from featx.evaluation.features import ProbeError

ArrayLike = np.ndarray | torch.Tensor


class MLkNN:
    """ML-kNN fitted from neighbour index lists (any backend's)."""

    def __init__(self, k: int = 10, smoothing: float = 1.0) -> None:
        if k < 1:
            raise ProbeError(f"ML-kNN needs k >= 1, got {k}")
        self.k = k
        self.s = float(smoothing)

    @staticmethod
    def counts(neighbour_idx: torch.Tensor, positive: torch.Tensor, k: int, chunk: int = 16384) -> torch.Tensor:
        """``(nq, C)`` number of the first ``k`` neighbours carrying each label (``positive``: bank, bool)."""
        out = torch.empty((neighbour_idx.shape[0], positive.shape[1]), dtype=torch.int64, device=positive.device)
        for start in range(0, neighbour_idx.shape[0], chunk):
            out[start : start + chunk] = positive[neighbour_idx[start : start + chunk, :k]].sum(1)
        return out

    def fit(self, bank_labels: ArrayLike, fit_neighbours: ArrayLike, fit_rows: ArrayLike | None = None) -> MLkNN:
        """Estimate prior and likelihood tables.

        ``bank_labels`` (m, C) are the memory bank's labels; ``fit_neighbours`` (f, >=k) the
        leave-one-out neighbour lists (indices into the bank) of the fitting points, whose
        bank rows are ``fit_rows`` (default: all m rows, in order).
        """
        neighbours = torch.as_tensor(fit_neighbours).long()
        device = neighbours.device
        labels = torch.as_tensor(bank_labels, dtype=torch.float64).to(device)
        self.positive = torch.nan_to_num(labels) > 0.5
        rows = torch.arange(labels.shape[0], device=device) if fit_rows is None else torch.as_tensor(fit_rows).to(device)
        if neighbours.shape[0] != rows.shape[0]:
            raise ProbeError("one neighbour list per fitting point is needed")
        if neighbours.shape[1] < self.k:
            raise ProbeError(f"neighbour lists hold {neighbours.shape[1]} entries, k={self.k}")
        s, k = self.s, self.k
        known = ~torch.isnan(labels)
        self.prior = ((s + self.positive.sum(0)) / (2 * s + known.sum(0))).cpu().numpy()
        count = self.counts(neighbours, self.positive, k)  # (f, C)
        fit_labels = labels[rows]
        n_classes = labels.shape[1]
        cell = torch.arange(n_classes, device=device) * (k + 1) + count  # (f, C): (label, count) cell
        size = n_classes * (k + 1)
        c1 = torch.bincount(cell[fit_labels == 1], minlength=size).view(n_classes, k + 1)
        c0 = torch.bincount(cell[fit_labels == 0], minlength=size).view(n_classes, k + 1)
        self.c1, self.c0 = c1.cpu().numpy().astype(np.float64), c0.cpu().numpy().astype(np.float64)
        self.like1 = (s + self.c1) / (s * (k + 1) + self.c1.sum(1, keepdims=True))
        self.like0 = (s + self.c0) / (s * (k + 1) + self.c0.sum(1, keepdims=True))
        return self

    def predict_proba(self, neighbours: ArrayLike) -> np.ndarray:
        """``(nq, C)`` posteriors P(label | neighbour counts) for queries' neighbour lists."""
        idx = torch.as_tensor(neighbours).long().to(self.positive.device)
        count = self.counts(idx, self.positive, self.k)
        prior = torch.as_tensor(self.prior, device=idx.device)
        cols = torch.arange(count.shape[1], device=idx.device)[None, :]
        p1 = prior[None, :] * torch.as_tensor(self.like1, device=idx.device)[cols, count]
        p0 = (1 - prior)[None, :] * torch.as_tensor(self.like0, device=idx.device)[cols, count]
        return (p1 / (p1 + p0)).float().cpu().numpy()

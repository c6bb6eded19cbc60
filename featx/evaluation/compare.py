"""Paired comparisons of two scorings on the same test patients.

* **Paired patient bootstrap** (every headline metric): one resample of test patients, both
  models scored on it; the difference A - B per resample gives the 95% percentile interval and
  the two-sided p-value ``p = min(1, 2 * min(#{d* <= 0} + 1, #{d* >= 0} + 1) / (B + 1))``.
  For classification the metric is macro AUROC (mean over the classes defined in the test
  set); for segmentation the per-unit mean of macro Dice and macro Jaccard (the headline).
* **DeLong** (AUROC, per class): the fast algorithm of Sun & Xu (2014, IEEE SPL 21:1389) for
  the variance and covariance of two correlated AUROCs on the same rows; z = (A - B) / SE,
  two-sided normal p. It treats rows as independent (images of one patient are not clustered).
* **Per-unit differences** (segmentation): each test unit's (volume's or image's) headline
  for A minus B, averaged per patient; their mean, how many patients A wins, and the
  Wilcoxon signed-rank p over patients.
* **Holm** correction over a family of p-values (step-down; adjusted p is monotone).

Two scorings pair only if their kept predictions say the same ``test_set`` (same unit ids,
patients and labels); otherwise :class:`PairingError` says so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from featx.evaluation.features import ProbeError
from featx.evaluation.metrics import (
    auroc_per_class,
    bootstrap,
    patient_bootstrap_weights,
    patient_codes,
    percentile_interval,
)
from featx.evaluation.predictions import TestPredictions


class PairingError(ProbeError):
    """Two scorings cannot be paired: their test samples differ."""


@dataclass
class DeLong:
    """DeLong's test of two correlated AUROCs of one class."""

    auc_a: float
    auc_b: float
    var_a: float
    var_b: float
    cov: float
    n_pos: int
    n_neg: int

    @property
    def difference(self) -> float:
        return self.auc_a - self.auc_b

    @property
    def se(self) -> float:
        return math.sqrt(max(self.var_a + self.var_b - 2 * self.cov, 0.0))

    @property
    def z(self) -> float:
        return self.difference / self.se if self.se > 0 else (0.0 if self.difference == 0 else math.copysign(math.inf, self.difference))

    @property
    def p(self) -> float:
        return float(2 * stats.norm.sf(abs(self.z)))

    @property
    def ci(self) -> tuple[float, float]:
        half = 1.959963984540054 * self.se
        return self.difference - half, self.difference + half


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """AUROCs ``(K,)`` and their covariance ``(K, K)`` for ``scores`` ``(K, n)`` of binary ``labels`` (fast DeLong).

    Sun & Xu (2014): with midranks T_Z of all scores, T_X of the positives and T_Y of the negatives,
    V10_i = (T_Z(x_i) - T_X(x_i)) / n, V01_j = 1 - (T_Z(y_j) - T_Y(y_j)) / m,
    AUC = mean V10, S = cov(V10) / m + cov(V01) / n.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    pos, neg = scores[:, labels], scores[:, ~labels]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ProbeError("DeLong's test needs positives and negatives")
    tx = stats.rankdata(pos, axis=1)
    ty = stats.rankdata(neg, axis=1)
    tz = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    aucs = v10.mean(1)
    sx = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(scores), len(scores)))
    sy = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(scores), len(scores)))
    return aucs, sx / m + sy / n, m, n


def delong(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLong:
    """DeLong's test of AUROC(A) = AUROC(B) on the same rows (unknown labels, NaN, left out)."""
    labels = np.asarray(labels, dtype=np.float64)
    known = np.isfinite(labels)
    aucs, cov, m, n = delong_covariance(labels[known] > 0.5, np.stack([np.asarray(scores_a)[known], np.asarray(scores_b)[known]]))
    return DeLong(float(aucs[0]), float(aucs[1]), float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1]), m, n)


@dataclass
class PairedDifference:
    """The difference A - B of one metric on the same test patients, with a paired bootstrap interval and p."""

    metric: str
    a: float
    b: float
    ci: tuple[float, float]
    p: float
    n_boot: int
    n_patients: int

    @property
    def difference(self) -> float:
        return self.a - self.b


def bootstrap_p(differences: np.ndarray) -> float:
    """Two-sided p of "no difference" from paired bootstrap differences (NaN ones left out)."""
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return float("nan")
    return float(min(1.0, 2 * min((d <= 0).sum() + 1, (d >= 0).sum() + 1) / (d.size + 1)))


def paired_auroc(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, patients: np.ndarray, *,
                 n_boot: int = 1000, seed: int = 0) -> PairedDifference:
    """Macro AUROC of A minus B with the paired patient bootstrap (classes defined in the whole test set)."""
    labels = np.asarray(labels, dtype=np.float64)
    point_a, point_b = auroc_per_class(labels, scores_a), auroc_per_class(labels, scores_b)
    defined = np.isfinite(point_a)
    boot, _, n_pat = bootstrap(labels, [scores_a, scores_b], patients, task="multilabel", n_boot=n_boot, seed=seed)
    boot_a, boot_b = boot[0][:, defined], boot[1][:, defined]  # the same patient resamples for both
    ok = np.isfinite(boot_a).all(1) & np.isfinite(boot_b).all(1)
    d = np.where(ok, boot_a.mean(1) - boot_b.mean(1), np.nan)
    return PairedDifference("auroc_macro", float(point_a[defined].mean()), float(point_b[defined].mean()),
                            percentile_interval(d), bootstrap_p(d), n_boot, n_pat)


def _unit_scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit and class Dice, Jaccard (0 where undefined) and whether defined: ``(U, C-1)`` each."""
    tp, fp, fn = (counts[..., i].astype(np.float64) for i in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        dice, jac = 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)
    defined = np.isfinite(dice)
    return np.nan_to_num(dice), np.nan_to_num(jac), defined.astype(np.float64)


def seg_headline(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The per-unit headline (mean of macro Dice and macro Jaccard) under each row of unit ``weights`` ``(B, U)``."""
    dice, jac, defined = _unit_scores(counts)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        w_def = weights @ defined
        return 0.5 * (np.nanmean((weights @ dice) / w_def, 1) + np.nanmean((weights @ jac) / w_def, 1))


@dataclass
class UnitDifferences:
    """Per-patient mean of the per-unit headline differences A - B."""

    mean: float
    n_patients: int
    a_better: int
    b_better: int
    wilcoxon_p: float


def unit_differences(counts_a: np.ndarray, counts_b: np.ndarray, patients: np.ndarray) -> UnitDifferences:
    """Each unit's headline A - B (macro over the classes defined in that unit), averaged per patient."""
    def per_unit(counts: np.ndarray) -> np.ndarray:
        dice, jac, defined = _unit_scores(counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            n = defined.sum(1)
            return np.where(n > 0, 0.5 * ((dice * defined).sum(1) + (jac * defined).sum(1)) / np.where(n > 0, n, 1), np.nan)

    d = per_unit(counts_a) - per_unit(counts_b)
    inverse, n_pat = patient_codes(patients)
    keep = np.isfinite(d)
    sums = np.bincount(inverse[keep], weights=d[keep], minlength=n_pat)
    counts = np.bincount(inverse[keep], minlength=n_pat)
    per_patient = sums[counts > 0] / counts[counts > 0]
    nonzero = per_patient[per_patient != 0]
    p = float(stats.wilcoxon(nonzero).pvalue) if nonzero.size >= 1 else 1.0
    return UnitDifferences(float(per_patient.mean()) if per_patient.size else float("nan"), int(per_patient.size),
                           int((per_patient > 0).sum()), int((per_patient < 0).sum()), p)


def paired_segmentation(counts_a: np.ndarray, counts_b: np.ndarray, patients: np.ndarray, *,
                        n_boot: int = 1000, seed: int = 0) -> PairedDifference:
    """The headline (per unit) of A minus B with the paired patient bootstrap; ``patients`` per unit."""
    inverse, n_pat = patient_codes(patients)
    ones = np.ones((1, len(inverse)))
    diffs = [seg_headline(counts_a, w) - seg_headline(counts_b, w)
             for _, w in patient_bootstrap_weights(inverse, n_pat, n_boot, np.random.default_rng(seed))]
    d = np.concatenate(diffs) if diffs else np.zeros(0)
    return PairedDifference("dice_jaccard_mean", float(seg_headline(counts_a, ones)[0]), float(seg_headline(counts_b, ones)[0]),
                            percentile_interval(d), bootstrap_p(d), n_boot, n_pat)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count towards the family)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def check_paired(a: TestPredictions, b: TestPredictions, name_a: str = "A", name_b: str = "B") -> None:
    """Refuse to pair two scorings whose test samples (unit ids, patients, labels) differ."""
    if a.kind != b.kind or a.test_set != b.test_set:
        detail = ("one is classification, the other segmentation" if a.kind != b.kind
                  else f"{len(set(a.ids.tolist()) ^ set(b.ids.tolist()))} test ids differ" if set(a.ids.tolist()) != set(b.ids.tolist())
                  else "their test ids, patients or labels differ")
        raise PairingError(f"{name_a} and {name_b} were scored on different test samples ({detail}); "
                           "compare only results on the same dataset, split and test set")


def compare_predictions(a: TestPredictions, b: TestPredictions, *, n_boot: int = 1000, seed: int = 0,
                        name_a: str = "A", name_b: str = "B") -> tuple[PairedDifference, list[tuple[str, DeLong]], UnitDifferences | None]:
    """The paired difference of the headline, DeLong per class (classification) and per-unit differences (segmentation)."""
    check_paired(a, b, name_a, name_b)
    if a.kind == "scores":
        headline = paired_auroc(a.labels, a.scores, b.scores, a.patients, n_boot=n_boot, seed=seed)
        per_class = []
        for c, name in enumerate(a.class_names):
            column = a.labels[:, c]
            known = column[np.isfinite(column)]
            if (known > 0.5).any() and (known <= 0.5).any():
                per_class.append((name, delong(column, a.scores[:, c], b.scores[:, c])))
        return headline, per_class, None
    headline = paired_segmentation(a.counts, b.counts, a.patients, n_boot=n_boot, seed=seed)
    return headline, [], unit_differences(a.counts, b.counts, a.patients)

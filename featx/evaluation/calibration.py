"""Calibration of class scores: Brier score and expected calibration error with equal-mass bins.

For each class c (one-vs-rest; rows whose label is unknown are left out):

* **Brier** = mean over rows of (p_c - y_c)^2.
* **ECE** (equal-mass bins): the rows are sorted by p_c and cut into ``n_bins`` bins of
  (nearly) equal count; ECE = sum over bins of (n_b / n) * |mean y_c in b - mean p_c in b|.
* **Averaged**: the mean over the classes with known rows of the per-class numbers.

95% intervals: the percentile bootstrap over test patients; the bins are fixed by the point
estimate (each row keeps its bin) and each resample weighs the rows by how often their
patient was drawn. The reliability diagram plots, per bin, mean p against the observed rate.

kNN votes and ML-kNN posteriors are **scores**, not calibrated probabilities: their records
say ``probabilities: false`` and the report shows them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featx.evaluation.metrics import patient_bootstrap_weights, patient_codes, percentile_interval

N_BINS = 15
PROBABILITY_METHODS = ("linear_torch", "linear_sklearn", "finetune", "full", "lora", "bitfit")  # sigmoid/softmax outputs: probe and fine-tuning methods


@dataclass
class ClassCalibration:
    """Brier and ECE of one class (or their mean over classes), with intervals and the reliability bins."""

    name: str
    brier: float
    brier_ci: tuple[float, float]
    ece: float
    ece_ci: tuple[float, float]
    bins: list[tuple[float, float, int]]  # per bin: mean score, observed rate, rows


def bin_index(scores: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Equal-mass bins: each row's bin (0..n_bins-1) by rank of its score; ties broken by row order."""
    n = len(scores)
    order = np.argsort(scores, kind="mergesort")
    out = np.empty(n, dtype=np.int64)
    out[order] = np.minimum((np.arange(n) * n_bins) // max(n, 1), n_bins - 1)
    return out


def _weighted(y: np.ndarray, p: np.ndarray, bins: np.ndarray, n_bins: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Brier and ECE for each row of ``weights`` ``(B, n)``."""
    total = weights.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        brier = weights @ (p - y) ** 2 / total
        member = np.zeros((len(y), n_bins))
        member[np.arange(len(y)), bins] = 1.0
        gap = np.abs(weights @ (member * y[:, None]) - weights @ (member * p[:, None]))  # |sum w y - sum w p| per bin
        ece = gap.sum(1) / total
    return brier, ece


def ece(labels: np.ndarray, scores: np.ndarray, n_bins: int = N_BINS) -> float:
    """Expected calibration error of one class's scores with ``n_bins`` equal-mass bins."""
    y, p = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    return float(_weighted(y, p, bin_index(p, n_bins), n_bins, np.ones((1, len(y))))[1][0])


def calibrate(
    labels: np.ndarray,
    scores: np.ndarray,
    patients: np.ndarray,
    *,
    label_names: list[str],
    n_bins: int = N_BINS,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[ClassCalibration]:
    """Per class and averaged (``name="mean"``, last) Brier and ECE with patient-bootstrap intervals."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    inverse, n_pat = patient_codes(patients)
    out: list[ClassCalibration] = []
    points, boots = [], []
    classes = []
    for c, name in enumerate(label_names):
        known = np.flatnonzero(np.isfinite(labels[:, c]))
        if known.size:
            classes.append((c, name, known, labels[known, c], scores[known, c], bin_index(scores[known, c], n_bins)))
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in classes]
    for _, w in patient_bootstrap_weights(inverse, n_pat, max(n_boot, 0), np.random.default_rng(seed)):  # one resample serves every class
        for i, (_, _, known, y, p, bins) in enumerate(classes):
            parts[i].append(_weighted(y, p, bins, n_bins, w[:, known]))
    for (_, name, _, y, p, bins), part in zip(classes, parts):
        point = _weighted(y, p, bins, n_bins, np.ones((1, len(y))))
        boot = [np.concatenate([q[i] for q in part]) if part else np.zeros(0) for i in range(2)]
        reliability = [(float(p[bins == b].mean()), float(y[bins == b].mean()), int((bins == b).sum()))
                       for b in range(n_bins) if (bins == b).any()]
        out.append(ClassCalibration(name, float(point[0][0]), percentile_interval(boot[0]), float(point[1][0]),
                                    percentile_interval(boot[1]), reliability))
        points.append((point[0][0], point[1][0]))
        boots.append(boot)
    if out:
        mean_boot = [np.mean([b[i] for b in boots], axis=0) for i in range(2)] if n_boot > 0 else [np.zeros(0)] * 2
        pooled = _pooled_bins(labels, scores, n_bins)
        out.append(ClassCalibration("mean", float(np.mean([q[0] for q in points])), percentile_interval(mean_boot[0]),
                                    float(np.mean([q[1] for q in points])), percentile_interval(mean_boot[1]), pooled))
    return out


def _pooled_bins(labels: np.ndarray, scores: np.ndarray, n_bins: int) -> list[tuple[float, float, int]]:
    """Reliability bins of every (row, class) score pooled together (the averaged diagram)."""
    known = np.isfinite(labels)
    y, p = labels[known], scores[known]
    bins = bin_index(p, n_bins)
    return [(float(p[bins == b].mean()), float(y[bins == b].mean()), int((bins == b).sum())) for b in range(n_bins) if (bins == b).any()]


def are_probabilities(method: str | None) -> bool:
    """Whether a probe method outputs probabilities (linear probes, fine-tuned heads), not kNN / ML-kNN scores."""
    return bool(method) and (str(method).startswith("linear") or str(method) in PROBABILITY_METHODS)

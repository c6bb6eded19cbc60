"""Calibration: Brier equals scikit-learn's, ECE with equal-mass bins near 0 when calibrated, large when overconfident."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss

from featx.evaluation.calibration import are_probabilities, bin_index, calibrate, ece


def test_equal_mass_bins_hold_equal_counts():
    bins = bin_index(np.random.default_rng(0).random(1000), 15)
    counts = np.bincount(bins, minlength=15)
    assert counts.min() >= 66 and counts.max() <= 67


def test_ece_by_hand():
    # 4 rows, 2 bins: (0.1, 0.2) with labels (0, 1) -> |0.5 - 0.15|; (0.8, 0.9) with (1, 1) -> |1 - 0.85|
    assert ece(np.array([0, 1, 1, 1.0]), np.array([0.1, 0.2, 0.8, 0.9]), n_bins=2) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def test_calibrated_scores_have_ece_near_zero_and_overconfident_ones_large():
    rng = np.random.default_rng(0)
    p = rng.random(20000)
    y = (rng.random(20000) < p).astype(float)
    assert ece(y, p) < 0.02
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-4 * logit))  # the same ranking, pushed towards 0 and 1
    assert ece(y, overconfident) > 0.15


def test_calibrate_per_class_mean_and_intervals_over_patients():
    rng = np.random.default_rng(1)
    n = 600
    p = rng.random((n, 3))
    y = (rng.random((n, 3)) < p).astype(float)
    y[:5, 2] = np.nan  # unknown labels are left out of that class
    patients = np.repeat(np.arange(n // 2), 2).astype(str)
    found = calibrate(y, p, patients, label_names=["a", "b", "c"], n_boot=200)
    assert [c.name for c in found] == ["a", "b", "c", "mean"]
    assert found[0].brier == pytest.approx(brier_score_loss(y[:, 0], p[:, 0]))
    assert found[2].brier == pytest.approx(brier_score_loss(y[5:, 2], p[5:, 2]))
    assert found[3].ece == pytest.approx(np.mean([c.ece for c in found[:3]]))
    for c in found:
        assert c.brier_ci[0] <= c.brier <= c.brier_ci[1] and c.ece_ci[0] < c.ece_ci[1]
    assert sum(n for _, _, n in found[0].bins) == n and len(found[0].bins) == 15


def test_knn_and_mlknn_outputs_are_scores_not_probabilities():
    assert are_probabilities("linear_torch") and are_probabilities("linear_sklearn")
    assert not are_probabilities("weighted_knn") and not are_probabilities("mlknn")

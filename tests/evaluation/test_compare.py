"""Paired comparisons: DeLong parity, the paired bootstrap on planted truth, Holm, segmentation, refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from featx.evaluation.compare import (
    PairingError,
    check_paired,
    compare_predictions,
    delong,
    holm,
    paired_auroc,
    paired_segmentation,
    unit_differences,
)
from featx.evaluation.metrics import score
from featx.evaluation.predictions import TestPredictions


def sun_xu_reference(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Fast DeLong written independently from Sun & Xu (2014): midranks by an explicit loop; returns auc_a, auc_b, var of A - B, p."""
    def midrank(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x)
        z = x[order]
        t = np.zeros(len(x))
        i = 0
        while i < len(x):
            j = i
            while j < len(x) and z[j] == z[i]:
                j += 1
            t[i:j] = 0.5 * (i + j - 1) + 1
            i = j
        out = np.empty(len(x))
        out[order] = t
        return out

    pos, neg = labels == 1, labels == 0
    m, n = pos.sum(), neg.sum()
    aucs, v10s, v01s = [], [], []
    for s in (a, b):
        x, y = s[pos], s[neg]
        tx, ty, tz = midrank(x), midrank(y), midrank(np.concatenate([x, y]))
        aucs.append(tz[:m].sum() / (m * n) - (m + 1) / (2 * n))
        v10s.append((tz[:m] - tx) / n)
        v01s.append(1 - (tz[m:] - ty) / m)
    s = np.cov(np.stack(v10s)) / m + np.cov(np.stack(v01s)) / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (aucs[0] - aucs[1]) / math.sqrt(var)
    return aucs[0], aucs[1], var, 2 * stats.norm.sf(abs(z))


def test_delong_equals_an_independent_sun_xu_implementation_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300).astype(float)
    a = np.round(y + rng.normal(0, 1, 300), 1)  # rounded: many ties
    b = np.round(y + rng.normal(0, 1.4, 300), 1)
    got = delong(y, a, b)
    auc_a, auc_b, var, p = sun_xu_reference(y, a, b)
    assert got.auc_a == pytest.approx(auc_a, abs=1e-12) and got.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert got.se ** 2 == pytest.approx(var, rel=1e-10)
    assert got.p == pytest.approx(p, rel=1e-9)


def test_delong_hand_computed_case():
    # 2 positives (0.9, 0.4), 2 negatives (0.5, 0.1) for A; B ranks perfectly (0.8, 0.7 vs 0.3, 0.2).
    y = np.array([1, 1, 0, 0], float)
    a = np.array([0.9, 0.4, 0.5, 0.1])
    b = np.array([0.8, 0.7, 0.3, 0.2])
    got = delong(y, a, b)
    # A: V10 = (1, 0.5) (each positive's share of negatives below it), V01 = (0.5, 0) (share of positives above... 1 - below)
    # V01_j = share of positives above negative j: 0.5 for 0.5, 1 for 0.1 -> AUC_A = 0.75; B: V10 = (1, 1), V01 = (1, 1).
    assert got.auc_a == pytest.approx(0.75) and got.auc_b == pytest.approx(1.0)
    # var(A) = var(1, .5)/2 + var(.5, 1)/2 = 0.125/2 + 0.125/2 = 0.125; B has zero variance and covariance
    assert got.var_a == pytest.approx(0.125) and got.var_b == pytest.approx(0.0) and got.cov == pytest.approx(0.0)
    assert got.se == pytest.approx(math.sqrt(0.125))
    assert got.p == pytest.approx(2 * stats.norm.sf(0.25 / math.sqrt(0.125)))


def test_paired_bootstrap_interval_agrees_with_delong_on_a_large_sample():
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 2, n).astype(float)
    shared = rng.normal(0, 1, n)
    a = y + shared + rng.normal(0, 0.6, n)
    b = y + shared + rng.normal(0, 0.8, n)
    test = delong(y, a, b)
    boot = paired_auroc(y[:, None], a[:, None], b[:, None], np.arange(n).astype(str), n_boot=1000, seed=0)
    assert boot.difference == pytest.approx(test.difference, abs=1e-12)
    assert boot.ci[0] == pytest.approx(test.ci[0], abs=0.006) and boot.ci[1] == pytest.approx(test.ci[1], abs=0.006)


def _planted(n_patients: int, gap: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two models on the same patients: a shared hard part and their own noise; B's own noise ``gap`` larger."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n_patients).astype(float)
    shared = rng.normal(0, 1.0, n_patients)
    a = y + shared + rng.normal(0, 0.3, n_patients)
    b = y + shared + rng.normal(0, 0.3 + gap, n_patients)
    return y[:, None], a[:, None], b[:, None], np.array([f"p{i}" for i in range(n_patients)])


def test_small_real_difference_is_significant_paired_while_the_separate_intervals_overlap():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 600).astype(float)
    hard = rng.normal(0, 1.0, 600) + rng.normal(0, 0.3, 600)  # what both models get wrong alike
    y, a, b = labels[:, None], (labels + hard)[:, None], (0.92 * labels + hard)[:, None]  # B separates 8% less
    patients = np.array([f"p{i}" for i in range(600)])
    paired = paired_auroc(y, a, b, patients, n_boot=1000, seed=0)
    sep_a = score(y, a, patients, task="multilabel", label_names=["c"], n_boot=1000, seed=0)
    sep_b = score(y, b, patients, task="multilabel", label_names=["c"], n_boot=1000, seed=0)
    assert 0 < paired.difference < 0.05  # small and real
    assert paired.p < 0.05 and paired.ci[0] > 0
    assert sep_a.auroc_macro_ci[0] < sep_b.auroc_macro_ci[1]  # the separate 95% intervals overlap
    assert delong(y[:, 0], a[:, 0], b[:, 0]).p < 0.05


def test_no_difference_gives_few_small_p_values_over_100_repeats():
    ps = []
    for seed in range(100):
        y, a, b, patients = _planted(60, 0.0, seed=1000 + seed)
        ps.append(paired_auroc(y, a, b, patients, n_boot=200, seed=seed).p)
    ps = np.array(ps)
    assert (ps < 0.05).mean() < 0.10
    assert 0.3 < np.median(ps) < 0.8  # roughly uniform, not all near 1


def test_patients_with_several_rows_are_resampled_together():
    y, a, b, patients = _planted(200, 0.3, seed=2)
    rows = paired_auroc(np.repeat(y, 3, 0), np.repeat(a, 3, 0), np.repeat(b, 3, 0), np.repeat(patients, 3), n_boot=300, seed=0)
    once = paired_auroc(y, a, b, patients, n_boot=300, seed=0)
    assert rows.ci == pytest.approx(once.ci, abs=1e-9)  # three copies of a patient are one patient


def test_holm_by_hand():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.02, float("nan")])[0] == pytest.approx(0.02) and math.isnan(holm([0.02, float("nan")])[1])


def _counts(rng: np.random.Generator, n_units: int, quality: float) -> np.ndarray:
    """(units, 1 class, TP/FP/FN) with Dice around ``quality``."""
    tp = rng.integers(80, 120, n_units)
    err = np.maximum(0, (tp * (1 - quality) / quality + rng.normal(0, 3, n_units))).astype(int)
    return np.stack([tp, err // 2, err - err // 2], 1)[:, None, :]


def test_segmentation_paired_difference_and_per_patient_differences():
    rng = np.random.default_rng(0)
    counts_a = _counts(rng, 40, 0.9)
    counts_b = counts_a.copy()
    counts_b[:, 0, 1] += 6  # B adds false positives on every unit
    patients = np.repeat([f"p{i}" for i in range(20)], 2)
    found = paired_segmentation(counts_a, counts_b, patients, n_boot=500, seed=0)
    tp, fp, fn = (counts_a[:, 0, i].astype(float) for i in range(3))
    dice, jac = 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)
    assert found.a == pytest.approx(0.5 * (dice.mean() + jac.mean()))
    assert found.difference > 0 and found.ci[0] > 0 and found.p < 0.05
    units = unit_differences(counts_a, counts_b, patients)
    assert units.n_patients == 20 and units.a_better == 20 and units.wilcoxon_p < 0.001


def _kept(ids, labels, scores) -> TestPredictions:
    return TestPredictions("scores", np.asarray(ids), np.asarray(ids), ["c"], labels=np.asarray(labels, float)[:, None],
                           scores=np.asarray(scores, float)[:, None])


def test_refuses_to_pair_different_test_samples():
    a = _kept(["a", "b", "c", "d"], [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    other_ids = _kept(["a", "b", "c", "e"], [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    other_labels = _kept(["a", "b", "c", "d"], [0, 1, 1, 1], [0.1, 0.9, 0.2, 0.8])
    with pytest.raises(PairingError, match="different test samples .2 test ids differ"):
        check_paired(a, other_ids)
    with pytest.raises(PairingError, match="labels differ"):
        compare_predictions(a, other_labels)
    head, per_class, units = compare_predictions(a, _kept(["a", "b", "c", "d"], [0, 1, 0, 1], [0.3, 0.5, 0.6, 0.8]), n_boot=50)
    assert head.a == 1.0 and head.b == 0.75 and per_class[0][0] == "c" and units is None

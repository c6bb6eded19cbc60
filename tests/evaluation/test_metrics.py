import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from featx.evaluation.metrics import MetricWarning, accuracy, auroc_per_class, score, selection_score


def test_auroc_matches_sklearn_with_ties_and_nan():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 3)) < 0.4).astype(float)
    s = np.round(rng.random((300, 3)) + 0.5 * y, 1)  # rounded: many ties
    y[::7, 1] = np.nan
    got = auroc_per_class(y, s)
    for c in range(3):
        known = ~np.isnan(y[:, c])
        assert got[c] == pytest.approx(roc_auc_score(y[known, c], s[known, c]), abs=1e-12)


def test_separable_is_one_and_noise_is_half():
    rng = np.random.default_rng(1)
    y = np.eye(2)[rng.integers(0, 2, 4000)]
    assert selection_score(y, y + 0.1 * rng.random(y.shape)) == pytest.approx(1.0)
    assert selection_score(y, rng.random(y.shape)) == pytest.approx(0.5, abs=0.03)


def test_undefined_class_is_nan_and_warns():
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]], dtype=float)
    s = np.array([[0.9, 0.1], [0.1, 0.2], [0.8, 0.3], [0.2, 0.4]])
    with pytest.warns(MetricWarning, match="c1"):
        out = score(y, s, np.arange(4), task="multilabel", label_names=["c0", "c1"], n_boot=20)
    assert np.isnan(out.auroc[1]) and out.auroc_macro == pytest.approx(1.0)
    assert out.undefined == ["c1"] and np.isnan(out.auroc_ci[1]).all()


def test_patient_bootstrap_ci_brackets_estimate_and_is_reproducible():
    rng = np.random.default_rng(2)
    n = 400
    patients = np.repeat(np.arange(100), 4)
    y = np.eye(3)[rng.integers(0, 3, n)]
    s = y + rng.normal(0, 0.8, y.shape)
    a = score(y, s, patients, task="multiclass", label_names=list("abc"), n_boot=300, seed=5)
    b = score(y, s, patients, task="multiclass", label_names=list("abc"), n_boot=300, seed=5)
    assert a.auroc_macro_ci == b.auroc_macro_ci
    assert a.auroc_macro_ci[0] < a.auroc_macro < a.auroc_macro_ci[1]
    assert a.accuracy == pytest.approx(accuracy(y, s))
    assert a.accuracy_ci[0] < a.accuracy < a.accuracy_ci[1]
    assert (a.auroc_ci[:, 0] <= a.auroc + 1e-9).all() and (a.auroc_ci[:, 1] >= a.auroc - 1e-9).all()
    assert a.n_patients == 100


def test_bootstrap_is_by_patient_not_by_row():
    """Rows of one patient are perfectly correlated: a patient bootstrap gives a wider interval."""
    rng = np.random.default_rng(3)
    n_pat, per = 60, 20
    y_pat = rng.integers(0, 2, n_pat)
    s_pat = y_pat + rng.normal(0, 1.0, n_pat)
    y = np.eye(2)[np.repeat(y_pat, per)]
    s = np.stack([-np.repeat(s_pat, per), np.repeat(s_pat, per)], 1)
    by_patient = score(y, s, np.repeat(np.arange(n_pat), per), task="binary", label_names=["n", "p"], n_boot=400)
    by_row = score(y, s, np.arange(n_pat * per), task="binary", label_names=["n", "p"], n_boot=400)
    width = lambda r: r.auroc_macro_ci[1] - r.auroc_macro_ci[0]  # noqa: E731
    assert width(by_patient) > 2.5 * width(by_row)

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from featx.evaluation.metrics import MetricWarning, accuracy, auroc_per_class, score, score_over_seeds, selection_score


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


def test_macro_uses_one_class_set_for_point_and_resamples_and_counts_lost_resamples():
    """A rare class that is always ranked wrong: the macro of every resample is over both classes.

    Class a is ranked perfectly (AUROC 1), class b has one positive patient ranked last (AUROC 0):
    the point macro is 0.5. Averaging only the classes present in each resample would put the
    resamples without b's patient at 1.0 and give an interval reaching far above the point.
    """
    n = 40
    y = np.zeros((n, 2))
    y[: n // 2, 0] = 1
    y[0, 1] = 1  # one positive for b
    s = np.stack([y[:, 0] + np.linspace(0, 0.1, n), np.linspace(1, 0, n)], 1)
    s[0, 1] = -1.0  # b's positive ranked below every negative
    out = score(y, s, np.arange(n), task="multilabel", label_names=["a", "b"], n_boot=400, seed=1)
    assert out.auroc_macro == pytest.approx(0.5) and out.auroc[1] == 0.0
    assert out.auroc_macro_ci == pytest.approx((0.5, 0.5))
    lost = out.n_boot - out.auroc_ci_resamples[1]
    assert 0.2 * 400 < lost < 0.5 * 400  # ~ (1 - 1/n)^n of the resamples miss the one positive patient
    assert out.auroc_macro_ci_resamples == out.auroc_ci_resamples[1] and out.auroc_ci_resamples[0] == 400
    assert out.support(out.auroc_ci_resamples[1])["ci_low_support"] is True
    assert out.support(out.auroc_ci_resamples[0]) == {"ci_resamples": 400, "ci_resamples_lost": 0, "ci_low_support": False}


def test_mean_over_seeds_interval_contains_the_mean_and_spread_is_over_seeds():
    rng = np.random.default_rng(4)
    n = 200
    patients = np.repeat(np.arange(100), 2)
    y = np.eye(3)[rng.integers(0, 3, n)]
    sets = [y * strength + rng.normal(0, 1.0, y.shape) for strength in (0.5, 1.0, 2.0)]
    per_seed = [score(y, s, patients, task="multiclass", label_names=list("abc"), n_boot=0).auroc_macro for s in sets]
    out = score_over_seeds(y, sets, patients, task="multiclass", label_names=list("abc"), n_boot=300, seed=2)
    assert out.auroc_macro == pytest.approx(np.mean(per_seed))
    assert out.auroc_macro_ci[0] < out.auroc_macro < out.auroc_macro_ci[1]
    spread = out.over_seeds["auroc_macro"]
    assert spread["values"] == pytest.approx(per_seed) and spread["std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert spread["min"] == pytest.approx(min(per_seed)) and spread["max"] == pytest.approx(max(per_seed))
    # the interval covers the spread between seeds, which one seed's patient bootstrap does not
    one = score(y, sets[1], patients, task="multiclass", label_names=list("abc"), n_boot=300, seed=2)
    assert out.auroc_macro_ci[1] - out.auroc_macro_ci[0] > one.auroc_macro_ci[1] - one.auroc_macro_ci[0]
    assert out.ci_method == "95% percentile bootstrap over seeds and test patients"

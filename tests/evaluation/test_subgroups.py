"""Subgroups: metrics equal scikit-learn's on the subgroup's rows, too-small groups named, age bands, the gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from featx.evaluation.subgroups import age_band, groupings, score_subgroups


def _data(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.4).astype(float)
    sex = rng.choice(["F", "M"], n)
    strength = np.where(sex == "F", 2.0, 0.7)[:, None]  # the model is better on F
    scores = y * strength + rng.normal(0, 1, (n, 2))
    age = rng.integers(20, 90, n).astype(str)
    view = np.where(np.arange(n) < 6, "LL", rng.choice(["PA", "AP"], n))  # LL: 6 patients, too small
    meta = pd.DataFrame({"sex": sex, "age": age, "view": view, "site": ["one"] * n})
    return y, scores, np.array([f"p{i}" for i in range(n)]), meta


def test_subgroup_metrics_equal_sklearn_on_the_subgroup_rows():
    y, scores, patients, meta = _data()
    found = {g.column: g for g in score_subgroups(y, scores, patients, meta, n_boot=200)}
    for group in found["sex"].groups:
        rows = meta["sex"].to_numpy() == group.group
        expected = np.mean([roc_auc_score(y[rows, c], scores[rows, c]) for c in range(2)])
        assert group.value == pytest.approx(expected, abs=1e-12)
        assert group.ci[0] < group.value < group.ci[1] and group.n_patients == rows.sum()


def test_the_gap_is_best_minus_worst_with_an_interval():
    y, scores, patients, meta = _data()
    sex = next(g for g in score_subgroups(y, scores, patients, meta, n_boot=300) if g.column == "sex")
    values = {g.group: g.value for g in sex.groups}
    assert sex.gap_between == ("F", "M") and sex.gap == pytest.approx(values["F"] - values["M"])
    assert 0 < sex.gap_ci[0] < sex.gap < sex.gap_ci[1]


def test_too_small_subgroups_are_named_not_dropped_and_ages_are_banded():
    y, scores, patients, meta = _data()
    found = {g.column: g for g in score_subgroups(y, scores, patients, meta, n_boot=50)}
    assert set(found) == {"sex", "age_band", "view"}  # a column with one value is no grouping
    ll = next(g for g in found["view"].groups if g.group == "LL")
    assert ll.value is None and ll.too_small == "6 patients (fewer than 10)"
    assert {g.group for g in found["age_band"].groups} <= {"18-39", "40-59", "60-79", "80+"}
    assert [age_band(v) for v in ("0", "17.9", "18", "79", "80", "104", "n/a")] == ["0-17", "0-17", "18-39", "60-79", "80+", "80+", "unknown"]
    assert groupings(None) == {}

import dataclasses
import warnings

import numpy as np
import pytest

from featx.evaluation.features import ProbeError
from featx.evaluation.ledger import TestReuseWarning
from featx.evaluation.selection import NoValidationSplit, PatientLeakError, SealedSplitError, Splits, TestAlreadyScored
from tests.probes.conftest import planted_data


def test_views_never_carry_test_labels():
    data = planted_data(task="multiclass")
    splits = Splits(data)
    for view in (splits.train, splits.val, splits.train_val):
        assert not np.isnan(view.labels).any()
    # the shared data behind the views has NaN where test labels were
    assert np.isnan(splits.train._data.labels[data.split == "test"]).all()
    with pytest.raises(SealedSplitError):
        splits.view("test")
    with pytest.raises(SealedSplitError):
        splits.view("train+test")


def test_scoring_test_during_selection_is_impossible():
    """A selection that tries to peek at the test split fails."""
    splits = Splits(planted_data(task="multiclass"))

    def cheating_score(candidate):
        splits.score_test_once("peek", lambda t: np.zeros((t.n, 3)))
        return 0.0

    with pytest.raises(SealedSplitError):
        splits.select([1, 2], cheating_score)

    def peeking_features(candidate):
        splits.test_inputs()
        return 0.0

    with pytest.raises(SealedSplitError):
        splits.select([1, 2], peeking_features)
    # after a refused attempt the split is usable again, once
    splits.score_test_once("final", lambda t: np.ones((t.n, 3)))
    with pytest.raises(TestAlreadyScored):
        splits.score_test_once("final", lambda t: np.ones((t.n, 3)))


def test_select_picks_best_on_validation_and_ignores_nan():
    splits = Splits(planted_data(task="multiclass"))
    scores = {"a": 0.7, "b": float("nan"), "c": 0.9, "d": 0.9}
    sel = splits.select(list(scores), lambda c: scores[c])
    assert sel.best == "c" and sel.best_score == 0.9 and len(sel.scores) == 4


def test_no_validation_split_is_a_clear_error_never_test():
    data = planted_data(task="multiclass")
    data.split[data.split == "val"] = "train"
    splits = Splits(data)
    assert not splits.has_val
    with pytest.raises(NoValidationSplit, match="never selects on test"):
        splits.select([1, 2], lambda c: 0.5)
    with pytest.raises(NoValidationSplit):
        splits.val


def test_test_inputs_have_no_labels_and_score_uses_sealed_ones():
    data = planted_data(task="binary")
    truth = data.labels[data.split == "test"]
    splits = Splits(data)
    inputs = splits.test_inputs()
    assert not hasattr(inputs, "labels")
    result = splits.score_test_once("oracle", lambda t: truth, n_boot=10)
    assert result.auroc_macro == pytest.approx(1.0)


def test_store_without_test_rows_is_refused():
    data = planted_data(task="multiclass")
    data.split[data.split == "test"] = "train"
    with pytest.raises(ProbeError, match="no test rows"):
        Splits(data)


def test_patient_in_two_splits_is_refused_with_the_adapters_message():
    data = planted_data(task="multiclass")
    test_patient = data.patients[data.split == "test"][0]
    data.split[np.flatnonzero(data.patients == test_patient)[0]] = "train"  # one image of a test patient in train
    with pytest.raises(PatientLeakError, match=rf"patient '{test_patient}' appears in splits \['test', 'train'\].*patient-level"):
        Splits(data)


def test_fresh_splits_on_the_same_data_see_earlier_test_scorings():
    """The ledger spans Splits objects: other hyper-parameters warn and count, the same ones do not."""
    data = planted_data(task="multiclass")
    first = Splits(data)
    first.score_test_once("a", lambda t: np.ones((t.n, 3)), setting="knn", hyperparameters={"k": 10}, n_boot=0)
    assert first.test_use("a").reuse == 0
    same = Splits(data)
    same.score_test_once("a", lambda t: np.ones((t.n, 3)), setting="knn", hyperparameters={"k": 10}, n_boot=0)
    assert same.test_use("a").reuse == 0  # an identical re-run is no re-use
    with pytest.warns(TestReuseWarning, match="RE-USED.*test_reuse: 1"):
        first.score_test_once("b", lambda t: np.ones((t.n, 3)), setting="knn", hyperparameters={"k": 20}, n_boot=0)
    assert first.test_use("b").reuse == 1
    other = Splits(data, allow_test_reuse=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TestReuseWarning)
        other.score_test_once("c", lambda t: np.ones((t.n, 3)), setting="knn", hyperparameters={"k": 100}, n_boot=0)
    assert other.test_use("c").reuse == 2 and other.test_use("c").deliberate
    # without hyper-parameters the predictions themselves are the fingerprint
    with pytest.warns(TestReuseWarning):
        Splits(data).score_test_once("raw", lambda t: np.zeros((t.n, 3)), setting="knn", n_boot=0)
    # other features on the same rows are another test set (another backbone), not a re-use
    shifted = dataclasses.replace(data, blocks={k: v + 1 for k, v in data.blocks.items()})
    fresh = Splits(shifted)
    fresh.score_test_once("a", lambda t: np.ones((t.n, 3)), setting="knn", hyperparameters={"k": 50}, n_boot=0)
    assert fresh.test_use("a").reuse == 0

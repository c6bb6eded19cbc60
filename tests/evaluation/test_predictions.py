"""Kept test predictions: round trip beside the results file, the test-set identity, a missing file named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featx.evaluation.predictions import PredictionsError, TestPredictions, load, save, sidecar, unit_counts


def _kept(ids=("a", "b", "c"), labels=((0, 1), (1, 0), (0, 1))) -> TestPredictions:
    return TestPredictions("scores", np.array(ids), np.array(["p1", "p1", "p2"]), ["x", "y"], labels=np.array(labels, np.float32),
                           scores=np.array([[0.1, 0.9], [0.7, 0.3], [0.33333, 0.66667]]), metadata=pd.DataFrame({"sex": ["F", "F", "M"]}))


def test_round_trip_float16_and_metadata(tmp_path):
    results = tmp_path / "r.jsonl"
    field = save(results, _kept(), probabilities=True)
    assert sidecar(results) == tmp_path / "r.jsonl.predictions" and (sidecar(results) / f"{field['id']}.npz").is_file()
    assert save(results, _kept(), probabilities=True) == field  # content-addressed: the same file again
    back = load({"predictions": field}, results)
    assert back.test_set == field["test_set"] == _kept().test_set
    assert back.scores == pytest.approx(_kept().scores, abs=1e-3) and back.ids.tolist() == ["a", "b", "c"]
    assert back.metadata["sex"].tolist() == ["F", "F", "M"] and back.class_names == ["x", "y"]


def test_test_set_changes_with_ids_or_labels():
    assert _kept(ids=("a", "b", "d")).test_set != _kept().test_set
    assert _kept(labels=((1, 0), (1, 0), (0, 1))).test_set != _kept().test_set


def test_missing_predictions_are_named(tmp_path):
    with pytest.raises(PredictionsError, match="keeps no test predictions"):
        load({"backbone": "b", "setting": "knn", "dataset": "d"}, tmp_path / "r.jsonl")
    with pytest.raises(PredictionsError, match="is missing; keep the folder r.jsonl.predictions/"):
        load({"predictions": {"id": "x"}}, tmp_path / "r.jsonl")


def test_unit_counts_sum_the_slices_of_each_volume():
    counts = np.arange(5 * 1 * 3).reshape(5, 1, 3)
    ids, patients, per_unit = unit_counts(counts, np.array(["v2", "v1", "v2", "v1", "v3"]), np.array(["q", "p", "q", "p", "r"]))
    assert ids.tolist() == ["v2", "v1", "v3"] and patients.tolist() == ["q", "p", "r"]
    assert per_unit[0, 0].tolist() == (counts[0, 0] + counts[2, 0]).tolist()

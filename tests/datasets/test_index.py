import numpy as np
import pandas as pd
import pytest

from featx.datasets.index import COLUMNS, DatasetError, Problem, SampleIndex, check_patient_level


def _table(n=4, split=("train", "train", "val", "test")):
    return pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                         "split": list(split), "source": [f"/x/{i}.png" for i in range(n)], "reader": "image"})


def test_normalise_fills_optional_columns():
    idx = SampleIndex("d", "binary", "xray", ["a", "b"], _table(), np.eye(2)[[0, 1, 0, 1]])
    assert list(idx.table.columns) == list(COLUMNS)
    assert (idx.table["slice_index"] == -1).all() and not idx.is_3d
    assert idx.labels.dtype == np.float32


def test_rejects_bad_split_and_duplicates_and_label_shape():
    with pytest.raises(DatasetError, match="split 'training'"):
        SampleIndex("d", "binary", "xray", ["a", "b"], _table(split=("train", "training", "val", "test")), np.zeros((4, 2)))
    t = _table()
    t.loc[1, "sample_id"] = "s0"
    with pytest.raises(DatasetError, match="duplicate"):
        SampleIndex("d", "binary", "xray", ["a", "b"], t, np.zeros((4, 2)))
    with pytest.raises(DatasetError, match="label columns"):
        SampleIndex("d", "binary", "xray", ["a", "b", "c"], _table(), np.zeros((4, 2)))
    with pytest.raises(DatasetError, match="unknown task"):
        SampleIndex("d", "regression", "xray", [], _table(), np.zeros((4, 0)))


def test_subset_and_patient_check():
    idx = SampleIndex("d", "binary", "xray", ["a", "b"], _table(), np.eye(2)[[0, 1, 0, 1]], [Problem("f", "m")])
    sub = idx.subset(idx.table["split"] == "train")
    assert len(sub) == 2 and sub.labels.shape == (2, 2) and str(sub.problems[0]) == "f: m"
    leak = _table()
    leak.loc[3, "patient_id"] = "p0"
    with pytest.raises(DatasetError, match="patient 'p0'"):
        check_patient_level(leak)

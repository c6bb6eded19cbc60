import numpy as np
import pandas as pd
import pytest

from featx.datasets import build_index
from featx.datasets.index import DatasetError
from featx.datasets.splits import (
    PAPER_PROPORTIONS,
    SplitProportions,
    apply_split_file,
    assign_systematic,
    export_split,
    natural_key,
    read_split_file,
    systematic_indices,
    systematic_patient_split,
)
from tests.datasets.fixtures import make_csv_2d, make_sarscov2


def test_systematic_indices_match_paper_code():
    # the released code: np.arange(0, 210, 210/70).round()
    assert np.array_equal(systematic_indices(210, 70), np.arange(0, 210, 210 / 70).round().astype(int))
    assert np.array_equal(systematic_indices(140, 50), np.arange(0, 140, 140 / 50).round().astype(int))
    assert len(set(systematic_indices(7, 7))) == 7
    with pytest.raises(DatasetError):
        systematic_indices(3, 4)


def test_paper_counts_for_sarscov2_and_figshare():
    patients = [f"p{i}" for i in range(210)]
    split = systematic_patient_split(patients, PAPER_PROPORTIONS["sarscov2_ct"])
    counts = pd.Series(split).value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (90, 50, 70)
    split = systematic_patient_split([f"p{i}" for i in range(233)], PAPER_PROPORTIONS["figshare_brain_tumor"])
    counts = pd.Series(split).value_counts()
    assert (counts["val"], counts["test"]) == (50, 70)


def test_split_is_by_patient_and_deterministic():
    table = pd.DataFrame({"patient_id": ["a", "a", "b", "c", "c", "d", "e", "f"], "x": range(8)})
    one = assign_systematic(table, SplitProportions(0.2, 0.3))
    two = assign_systematic(table.copy(), SplitProportions(0.2, 0.3))
    assert one["split"].tolist() == two["split"].tolist()
    assert (one.groupby("patient_id")["split"].nunique() == 1).all()
    assert set(one["split"]) == {"train", "val", "test"}


def test_bad_proportions():
    with pytest.raises(DatasetError):
        SplitProportions(0.6, 0.5)


def test_natural_key():
    assert sorted(["Patient 10", "Patient 2", "Patient 1"], key=natural_key) == ["Patient 1", "Patient 2", "Patient 10"]


def test_export_then_import_roundtrip(tmp_path):
    idx = build_index("sarscov2_ct", make_sarscov2(tmp_path))
    path = export_split(idx, tmp_path / "split.csv")
    exported = pd.read_csv(path)
    assert list(exported.columns) == ["id", "split", "patient_id"]
    assert len(exported) == idx.table["volume_id"].nunique()  # one row per volume
    again = build_index("sarscov2_ct", make_sarscov2(tmp_path), split_file=path)
    assert again.table["split"].tolist() == idx.table["split"].tolist()


def test_import_published_split_by_patient_and_subset(tmp_path):
    csv = make_csv_2d(tmp_path, n_patients=4)
    (tmp_path / "paper.csv").write_text("patient_id,split\np0,test\np1,Validation\np2,train\n")
    idx = build_index("csv", csv, split_file=tmp_path / "paper.csv")
    assert dict(zip(idx.table["patient_id"], idx.table["split"], strict=True)) == {"p0": "test", "p1": "val", "p2": "train"}
    assert any("not listed" in p.message for p in idx.problems)  # p3 left out, and said so


def test_import_refuses_leaking_split(tmp_path):
    csv = make_csv_2d(tmp_path, n_patients=2)
    (tmp_path / "leak.csv").write_text("sample_id,split\nimages/p0_0.png,train\nimages/p0_1.png,test\nimages/p1_0.png,val\n")
    with pytest.raises(DatasetError, match="patient 'p0'"):
        build_index("csv", csv, split_file=tmp_path / "leak.csv")


def test_bad_split_files(tmp_path):
    (tmp_path / "a.csv").write_text("id,split\nx,holdout\n")
    with pytest.raises(DatasetError, match="line 2 has split 'holdout'"):
        read_split_file(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        read_split_file(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("id,split\nx,train\nx,test\n")
    with pytest.raises(DatasetError, match="two splits"):
        read_split_file(tmp_path / "c.csv")
    with pytest.raises(DatasetError, match="not found"):
        read_split_file(tmp_path / "none.csv")
    idx = build_index("csv", make_csv_2d(tmp_path, n_patients=2))
    (tmp_path / "d.csv").write_text("id,split\nzzz,train\n")
    with pytest.raises(DatasetError, match="none of its"):
        apply_split_file(idx, tmp_path / "d.csv")

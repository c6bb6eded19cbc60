import numpy as np
import pytest

from featx.datasets import build_index
from featx.datasets.index import DatasetError
from tests.datasets.fixtures import make_chexpert

FIVE = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def test_frontal_only_splits_and_patients(tmp_path):
    root = make_chexpert(tmp_path, n_patients=8, n_valid_patients=2)
    idx = build_index("chexpert", root)
    t = idx.table
    assert idx.label_names == FIVE and len(idx) == 10
    assert t["sample_id"].str.endswith("view1_frontal.jpg").all()
    assert (t.loc[t["split"] == "test", "patient_id"].str.startswith("patient645")).all()
    assert set(t["split"]) == {"train", "val", "test"} and (t.groupby("patient_id")["split"].nunique() == 1).all()
    assert t["patient_id"].str.match(r"patient\d{5}$").all()
    with_lateral = build_index("chexpert", root, frontal_only=False)
    assert len(with_lateral) == 18


def test_parent_folder_and_full_variant(tmp_path):
    make_chexpert(tmp_path)
    assert len(build_index("chexpert", tmp_path)) == 10
    full = tmp_path / "full"
    make_chexpert(full, variant="full")
    assert len(build_index("chexpert", full, variant="full")) == 10
    with pytest.raises(DatasetError, match="variant"):
        build_index("chexpert", tmp_path, variant="tiny")


@pytest.mark.parametrize("policy,expected", [("u_zeros", 0.0), ("u_ones", 1.0), ("ignore", None)])
def test_uncertainty_policy(tmp_path, policy, expected):
    idx = build_index("chexpert", make_chexpert(tmp_path), uncertainty=policy)
    # patient00001: Atelectasis value index (1+0)%4 = 1 -> "0.0"; patient00002 -> (2+0)%4=2 -> "-1.0"; p3 -> blank
    row = idx.table.index[idx.table["patient_id"] == "patient00002"][0]
    value = idx.labels[row, 0]
    assert np.isnan(value) if expected is None else value == expected
    blank = idx.table.index[idx.table["patient_id"] == "patient00003"][0]
    assert idx.labels[blank, 0] == 0.0
    if policy != "ignore":
        assert not np.isnan(idx.labels).any()


def test_bad_label_value_and_missing_image(tmp_path):
    root = make_chexpert(tmp_path)
    csv = root / "train.csv"
    lines = csv.read_text().splitlines()
    cols = lines[1].split(",")
    cols[13] = "2.0"  # Atelectasis
    lines[1] = ",".join(cols)
    csv.write_text("\n".join(lines) + "\n")
    (root / "train" / "patient00002" / "study1" / "view1_frontal.jpg").unlink()
    idx = build_index("chexpert", root)
    messages = [str(p) for p in idx.problems]
    assert any("patient00001" in m and "'2.0'" in m for m in messages)
    assert any("patient00002" in m and "not found" in m for m in messages)
    assert len(idx) == 8
    with pytest.raises(DatasetError, match="uncertainty"):
        build_index("chexpert", root, uncertainty="u_maybe")

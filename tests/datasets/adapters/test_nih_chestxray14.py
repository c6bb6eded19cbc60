import numpy as np
import pytest

from featx.datasets import build_index, load_sample
from featx.datasets.index import DatasetError
from tests.datasets.fixtures import NIH_FINDINGS, make_nih, truncate


def test_index_counts_labels_and_official_split(tmp_path):
    root = make_nih(tmp_path, n_patients=8, images_per_patient=2)
    idx = build_index("nih_chestxray14", root)
    assert idx.task == "multilabel" and idx.modality == "xray" and idx.label_names == NIH_FINDINGS
    assert len(idx) == 16 and idx.labels.shape == (16, 14)
    t = idx.table
    assert t["sample_id"].tolist() == sorted(t["sample_id"])
    test_list = set((root / "test_list.txt").read_text().split())
    assert set(t.loc[t["split"] == "test", "sample_id"]) == test_list
    assert set(t["split"]) == {"train", "val", "test"}
    assert (t.groupby("patient_id")["split"].nunique() == 1).all()
    no_finding = t.index[t["sample_id"] == "00000001_000.png"][0]
    assert idx.labels[no_finding].sum() == 0
    both = t.index[t["sample_id"] == "00000002_000.png"][0]  # patient 2's finding is Effusion
    assert idx.labels[both, NIH_FINDINGS.index("Effusion")] == 1
    three = t.index[t["sample_id"] == "00000003_000.png"][0]
    assert idx.labels[three, NIH_FINDINGS.index("Atelectasis")] == 1 and idx.labels[three, NIH_FINDINGS.index("Effusion")] == 1
    image, mask = load_sample(t.iloc[0].to_dict())
    assert image.shape == (16, 16) and mask is None


def test_no_finding_as_15th_label(tmp_path):
    idx = build_index("nih_chestxray14", make_nih(tmp_path), include_no_finding=True)
    assert idx.label_names[-1] == "No Finding" and idx.labels.shape[1] == 15
    row = idx.table.index[idx.table["sample_id"] == "00000001_000.png"][0]
    assert idx.labels[row, 14] == 1 and idx.labels[row].sum() == 1


def test_missing_file_and_unknown_label_are_quarantined(tmp_path):
    root = make_nih(tmp_path)
    (root / "images_001" / "images" / "00000002_001.png").unlink()
    csv = root / "Data_Entry_2017.csv"
    csv.write_text(csv.read_text().replace("00000003_001.png,Atelectasis,", "00000003_001.png,Broken Bone,"))
    idx = build_index("nih_chestxray14", root)
    messages = [str(p) for p in idx.problems]
    assert any("00000002_001.png" in m and "not found" in m for m in messages)
    assert any("00000003_001.png" in m and "outside the label set" in m for m in messages)
    assert len(idx) == 14


def test_truncated_png_fails_at_read_naming_file(tmp_path):
    root = make_nih(tmp_path)
    truncate(root / "images_001" / "images" / "00000001_000.png", 0.4)
    idx = build_index("nih_chestxray14", root)
    with pytest.raises(DatasetError, match="00000001_000.png"):
        load_sample(idx.table.iloc[0].to_dict())


def test_without_official_lists_falls_back_to_systematic(tmp_path):
    idx = build_index("nih_chestxray14", make_nih(tmp_path, official_split=False))
    assert set(idx.table["split"]) == {"train", "val", "test"}
    assert any("systematic" in p.message for p in idx.problems)


def test_empty_csv(tmp_path):
    root = make_nih(tmp_path)
    (root / "Data_Entry_2017.csv").write_text("")
    with pytest.raises(DatasetError, match="empty"):
        build_index("nih_chestxray14", root)
    (root / "Data_Entry_2017.csv").unlink()
    with pytest.raises(DatasetError, match="Data_Entry_2017.csv"):
        build_index("nih_chestxray14", root)


def test_labels_are_zero_one(tmp_path):
    idx = build_index("nih_chestxray14", make_nih(tmp_path))
    assert set(np.unique(idx.labels)) <= {0.0, 1.0}

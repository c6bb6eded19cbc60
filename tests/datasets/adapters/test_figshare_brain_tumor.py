import numpy as np
import pytest

from featx.datasets import build_index, load_sample
from featx.datasets.index import DatasetError
from tests.datasets.fixtures import make_figshare, truncate, write_mat_v5, write_mat_v73


def test_index_labels_patients_masks(tmp_path):
    root = make_figshare(tmp_path, n_patients=9, images_per_patient=2)
    idx = build_index("figshare_brain_tumor", root)
    t = idx.table
    assert idx.task == "multiclass" and idx.label_names == ["meningioma", "glioma", "pituitary"]
    assert len(idx) == 18 and t["sample_id"].tolist() == [str(i) for i in range(1, 19)]  # natural order, cvind.mat ignored
    assert t["patient_id"].nunique() == 9 and (t.groupby("patient_id")["split"].nunique() == 1).all()
    for split in ("train", "test"):
        assert idx.labels[(t["split"] == split).to_numpy()].sum(0).min() > 0  # every class present
    image, mask = load_sample(t.iloc[0].to_dict())
    assert image.shape == mask.shape == (16, 16)
    assert (image[0, :8] == 1000).all()  # top row marker: MATLAB column-major order undone
    assert mask.sum() == 16


def test_v5_truncated_and_bad_label_quarantined(tmp_path):
    root = make_figshare(tmp_path, n_patients=3, images_per_patient=1)
    write_mat_v5(root / "old" / "100.mat", np.zeros((4, 4)))
    truncate(write_mat_v73(root / "old" / "101.mat", np.zeros((64, 64), np.int16), 1, "9"), 0.3)
    write_mat_v73(root / "old" / "102.mat", np.zeros((4, 4), np.int16), 7, "9")
    idx = build_index("figshare_brain_tumor", root)
    messages = {p.source.rsplit("/", 1)[1]: p.message for p in idx.problems}
    assert "not v7.3" in messages["100.mat"]
    assert "101.mat" in messages
    assert "label is 7" in messages["102.mat"]
    assert len(idx) == 3


def test_nothing_usable(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(DatasetError, match="no .mat files"):
        build_index("figshare_brain_tumor", tmp_path / "x")

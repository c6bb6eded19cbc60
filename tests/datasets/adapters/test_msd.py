import numpy as np
import pytest

from featx.datasets import build_index, load_sample
from featx.datasets.index import DatasetError
from tests.datasets.fixtures import make_msd, write_nifti


@pytest.mark.parametrize(
    "task,modality,labels,name,expected_modality",
    [
        ("Task09_Spleen", "CT", None, "msd_spleen", "ct"),
        ("Task04_Hippocampus", "MRI", {"0": "background", "1": "Anterior", "2": "Posterior"}, "msd_hippocampus", "mri"),
        ("Task02_Heart", "MRI", {"0": "background", "1": "left atrium"}, "msd_heart", "mri"),
    ],
)
def test_tasks(tmp_path, task, modality, labels, name, expected_modality):
    make_msd(tmp_path, task=task, n_volumes=6, shape=(16, 12, 4), modality=modality, labels=labels)
    idx = build_index("msd", tmp_path, task=task.split("_")[1])
    assert idx.dataset == name and idx.modality == expected_modality and idx.task == "segmentation"
    assert idx.label_names[0] == "background" and len(idx.label_names) == len(labels or {0: 0, 1: 1})
    t = idx.table
    assert len(idx) == 6 * 4 and t["volume_id"].nunique() == 6  # the ._ file and imagesTs are ignored
    assert (t["mask_reader"] == "nifti").all() and set(t["split"]) == {"train", "val", "test"}
    for _, group in t.groupby("volume_id", sort=False):
        assert group["slice_index"].tolist() == [0, 1, 2, 3]
    image, mask = load_sample(t.iloc[0].to_dict())
    assert image.shape == mask.shape == (16, 12) and mask.max() >= 1


def test_other_slice_axis(tmp_path):
    root = make_msd(tmp_path, n_volumes=3, shape=(16, 12, 4))
    idx = build_index("msd", root, slice_axis=0)
    assert len(idx) == 3 * 16
    image, mask = load_sample(idx.table.iloc[5].to_dict())
    assert image.shape == mask.shape == (12, 4)
    with pytest.raises(DatasetError, match="slice_axis"):
        build_index("msd", root, slice_axis=3)


def test_mask_shape_mismatch_and_missing_label_quarantined(tmp_path):
    root = make_msd(tmp_path, n_volumes=5)
    write_nifti(root / "labelsTr" / "spleen_2.nii.gz", np.zeros((8, 8, 4), np.uint8))
    (root / "labelsTr" / "spleen_3.nii.gz").unlink()
    idx = build_index("msd", root)
    messages = [str(p) for p in idx.problems]
    assert any("labelsTr/spleen_2.nii.gz" in m and "differs from image" in m and "imagesTr/spleen_2.nii.gz" in m
               for m in messages)
    assert any("spleen_3" in m and "not found" in m for m in messages)
    assert idx.table["volume_id"].nunique() == 3


def test_bad_dataset_json(tmp_path):
    root = make_msd(tmp_path)
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json: not valid JSON"):
        build_index("msd", root)
    (root / "dataset.json").write_text('{"labels": {"0": "background"}}')
    with pytest.raises(DatasetError, match="'training'"):
        build_index("msd", root)


def test_several_tasks_need_a_choice(tmp_path):
    make_msd(tmp_path, task="Task09_Spleen", n_volumes=3)
    make_msd(tmp_path, task="Task02_Heart", n_volumes=3, modality="MRI")
    with pytest.raises(DatasetError, match="several tasks"):
        build_index("msd", tmp_path)
    assert build_index("msd", tmp_path, task="09").dataset == "msd_spleen"

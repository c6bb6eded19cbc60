import numpy as np

from featx.datasets import build_index, load_sample
from tests.datasets.fixtures import make_amos


def test_ct_cases_train_and_validation(tmp_path):
    make_amos(tmp_path, n_train_ct=6, n_val_ct=2, n_mri=1, shape=(16, 16, 3))
    idx = build_index("amos", tmp_path)
    t = idx.table
    assert len(idx.label_names) == 16 and idx.label_names[0] == "background" and idx.modality == "ct"
    assert t["volume_id"].nunique() == 8 and not t["volume_id"].str.contains("amos_05").any()
    assert set(t["split"]) == {"train", "val", "test"} and (t.groupby("patient_id")["split"].nunique() == 1).all()
    image, mask = load_sample(t.iloc[0].to_dict())
    assert image.min() < -500 and mask.max() == 15  # HU, 15 organs


def test_official_split_and_mri_and_subset(tmp_path):
    make_amos(tmp_path)
    official = build_index("amos", tmp_path, split="official")
    test_vols = set(official.table.loc[official.table["split"] == "test", "volume_id"])
    assert test_vols == {"amos_0101", "amos_0102"}
    mri = build_index("amos", tmp_path, modality="mri")
    assert mri.modality == "mri" and set(mri.table["volume_id"]) == {"amos_0501"}
    sub = build_index("amos", tmp_path, max_volumes=4)
    assert sub.table["volume_id"].nunique() == 4
    assert np.all(sub.labels.shape == (len(sub), 0))

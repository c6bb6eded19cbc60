import numpy as np

from featx.datasets import build_index, load_sample
from tests.datasets.fixtures import make_sarscov2


def test_volumes_per_patient_in_natural_slice_order(tmp_path):
    root = make_sarscov2(tmp_path, n_covid=4, n_healthy=2, n_others=2, n_slices=11)
    idx = build_index("sarscov2_ct", tmp_path)
    t = idx.table
    assert idx.task == "binary" and idx.label_names == ["non-COVID", "COVID"]
    assert len(idx) == 8 * 11 and t["volume_id"].nunique() == 8
    first = t[t["volume_id"] == "COVID/Patient 1"]
    assert first["slice_index"].tolist() == list(range(11))
    assert [s.rsplit("/", 1)[1] for s in first["source"]] == [f"{k}.png" for k in range(1, 12)]
    # contiguous volumes
    changes = (t["volume_id"] != t["volume_id"].shift()).sum()
    assert changes == 8
    covid = t["volume_id"].str.startswith("COVID")
    assert (idx.labels[covid.to_numpy(), 1] == 1).all() and (idx.labels[~covid.to_numpy(), 0] == 1).all()
    assert (t.groupby("patient_id")["split"].nunique() == 1).all() and set(t["split"]) == {"train", "val", "test"}
    image, _ = load_sample(t.iloc[0].to_dict())
    assert image.shape == (16, 16, 3)
    assert root.name == "New_Data_CoV2"


def test_multiclass_and_empty_patient(tmp_path):
    root = make_sarscov2(tmp_path, n_slices=2)
    (root / "Healthy" / "Patient 9").mkdir()
    idx = build_index("sarscov2_ct", root, classes="multiclass")
    assert idx.task == "multiclass" and idx.label_names == ["COVID", "Healthy", "Others"]
    assert np.allclose(idx.labels.sum(1), 1)
    assert any("Patient 9" in str(p) for p in idx.problems)

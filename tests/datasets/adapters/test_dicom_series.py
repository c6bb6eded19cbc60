import numpy as np
import pytest

from featx.datasets import build_index, load_sample
from featx.datasets.index import DatasetError
from tests.datasets.fixtures import make_dicom, write_dicom_series


def test_index_series_with_labels(tmp_path):
    root, labels = make_dicom(tmp_path, n_series=6, shape=(4, 16, 16))
    idx = build_index("dicom", root, labels=str(labels))
    t = idx.table
    assert idx.task == "binary" and idx.label_names == ["abnormal", "normal"] and idx.modality == "ct"
    assert len(idx) == 24 and t["volume_id"].nunique() == 6 and (t["reader"] == "dicom_series").all()
    assert t["patient_id"].tolist()[:4] == ["patient0"] * 4  # from the DICOM PatientID tag
    image, _ = load_sample(t.iloc[0].to_dict())
    assert image.shape == (16, 16) and image.min() >= -1024


def test_bad_series_quarantined_and_unlisted_reported(tmp_path):
    root, labels = make_dicom(tmp_path, n_series=4)
    write_dicom_series(root / "patient1" / "CT1", np.ones((4, 16, 16), np.uint16), patient_id="patient1",
                       positions=[0.0, 1.0, 3.0, 4.0])
    write_dicom_series(root / "extra" / "CT9", np.ones((2, 16, 16), np.uint16), patient_id="x")
    idx = build_index("dicom", root, labels=str(labels))
    messages = [str(p) for p in idx.problems]
    assert any("inconsistent slice spacing" in m and "patient1/CT1" in m for m in messages)
    assert any("extra/CT9" in m and "not listed" in m for m in messages)
    assert idx.table["volume_id"].nunique() == 3


def test_labels_required(tmp_path):
    root, _ = make_dicom(tmp_path, n_series=2)
    with pytest.raises(DatasetError, match="needs labels"):
        build_index("dicom", root)

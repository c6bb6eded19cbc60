import numpy as np
import pytest

from featx.datasets import build_index, load_sample
from featx.datasets.index import DatasetError
from tests.datasets.fixtures import make_csv_2d, make_csv_3d, make_dicom, truncate


def test_2d_multiclass_and_multilabel(tmp_path):
    idx = build_index("csv", make_csv_2d(tmp_path))
    assert idx.dataset == "dataset" and idx.task == "binary" and idx.label_names == ["neg", "pos"]
    assert len(idx) == 16
    ml = build_index("csv", make_csv_2d(tmp_path / "ml", multilabel=True))
    assert ml.task == "multilabel" and ml.label_names == ["a", "b"]


def test_3d_volumes_are_sliced(tmp_path):
    idx = build_index("csv", make_csv_3d(tmp_path, n_patients=6, shape=(16, 16, 3)), modality="ct")
    assert idx.is_3d and len(idx) == 18 and idx.table["volume_id"].nunique() == 6
    assert idx.table["slice_index"].tolist()[:3] == [0, 1, 2]
    image, _ = load_sample(idx.table.iloc[0].to_dict())
    assert image.shape == (16, 16)


def test_dicom_folders_in_csv(tmp_path):
    root, _ = make_dicom(tmp_path, n_series=2, shape=(3, 8, 8))
    csv = root / "list.csv"
    csv.write_text("path,patient_id,split,label\npatient0/CT1,p0,train,a\npatient1/CT1,p1,test,b\n")
    idx = build_index("csv", csv)
    assert (idx.table["reader"] == "dicom_series").all() and len(idx) == 6


def _write(tmp_path, text):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


def test_bad_csvs(tmp_path):
    make_csv_2d(tmp_path)
    img = "csv2d/images/p0_0.png"
    cases = [
        ("", "empty"),
        ("path,patient_id,split,label\n", "no rows"),
        (f"path,patient_id,label\n{img},p0,neg\n", "missing required columns"),
        (f"path,patient_id,split,a\n{img},p0,train,2\n", "must hold 0 or 1"),
        (f"path,patient_id,split,label\n{img},p0,holdout,neg\n", "split 'holdout'"),
        (f"path,patient_id,split,label\n{img},p0,train,neg\n", "single class"),
        (f"path,patient_id,split,label\n{img},p0,train,a\ncsv2d/images/p0_1.png,p0,test,b\n", "patient 'p0'"),
    ]
    for text, message in cases:
        with pytest.raises(DatasetError, match=message):
            build_index("csv", _write(tmp_path, text))
    with pytest.raises(DatasetError, match="not a folder"):
        build_index("csv", tmp_path)


def test_missing_and_truncated_files(tmp_path):
    csv = make_csv_3d(tmp_path, n_patients=3)
    root = csv.parent
    (root / "volumes" / "case1.nii.gz").unlink()
    truncate(root / "volumes" / "case2.nii.gz", 0.1)
    idx = build_index("csv", csv)
    messages = [str(p) for p in idx.problems]
    assert any("case1.nii.gz" in m and "not found" in m for m in messages)
    assert any("case2.nii.gz" in m for m in messages)
    assert idx.table["volume_id"].unique().tolist() == ["volumes/case0.nii.gz"]
    csv2 = make_csv_2d(tmp_path / "t")
    truncate(csv2.parent / "images" / "p0_0.png", 0.3)
    idx2 = build_index("csv", csv2)
    with pytest.raises(DatasetError, match="p0_0.png"):
        load_sample(idx2.table[idx2.table["sample_id"] == "images/p0_0.png"].iloc[0].to_dict())
    assert np.isfinite(load_sample(idx2.table.iloc[1].to_dict())[0]).all()


def test_a_csv_mixing_png_and_nifti_rows_and_a_symlink_loop(tmp_path):
    """The README allows PNG and NIfTI rows in one CSV; a looping symlink is a named problem, not a traceback."""
    flat, volumes = make_csv_2d(tmp_path, n_patients=4), make_csv_3d(tmp_path, n_patients=4, shape=(16, 16, 3))
    (tmp_path / "csv2d" / "loop_a.png").symlink_to(tmp_path / "csv2d" / "loop_b.png")
    (tmp_path / "csv2d" / "loop_b.png").symlink_to(tmp_path / "csv2d" / "loop_a.png")
    volume_rows = [f"../csv3d/{line}".replace(",p", ",volume_p", 1) for line in volumes.read_text().splitlines()[1:]]
    lines = [*flat.read_text().splitlines(), *volume_rows, "loop_a.png,p99,train,neg"]
    mixed = tmp_path / "csv2d" / "mixed.csv"
    mixed.write_text("\n".join(lines) + "\n")

    index = build_index("csv", mixed)
    readers = index.table["reader"].value_counts().to_dict()
    assert readers == {"image": 8, "nifti": 12}
    flat_rows = index.table[index.table["reader"] == "image"]
    assert (flat_rows["slice_index"] == -1).all() and (flat_rows["volume_id"] == "").all()
    [problem] = index.problems
    assert problem.source.endswith("loop_a.png") and f"line {len(lines)} " in problem.message
    assert "Symlink loop" in problem.message

    from tests.pipeline.test_extract import run

    result = run(index, tmp_path / "cache")  # the whole mixed table is extracted into one store
    assert result.n_rows == 20 and result.n_failed == 0

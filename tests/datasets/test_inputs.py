"""Hostile and real-world CSV inputs: NIfTI header bombs, label and metadata columns, CT without a window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from featx.datasets import build_index
from featx.datasets.check import check_dataset
from featx.datasets.ct_hint import ct_window_warning
from featx.datasets.index import DatasetError
from featx.datasets.readers import canonical_shape, load_canonical_volume
from tests.datasets.fixtures import pattern, write_nifti, write_png


def write_bomb(path: Path, shape: tuple[int, ...], nifti2: bool = False) -> Path:
    """A header-only NIfTI (a few hundred bytes) declaring ``shape`` voxels."""
    cls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    header = cls(np.zeros((2, 2, 2), np.uint8), np.eye(4)).header
    header.set_data_shape(shape)
    data = header.binaryblock + b"\0" * 4
    path.write_bytes(data + b"\0" * (672 - len(data)) if nifti2 else data)
    return path


def bomb_csv(root: Path) -> Path:
    """12 good PNGs and the two header bombs of issue 22 item 8 in one CSV."""
    lines = ["path,patient_id,split,label"]
    for i in range(12):
        write_png(root / f"img{i}.png", pattern(i % 2, 16, seed=i))
        lines.append(f"img{i}.png,p{i},{('train', 'val', 'test')[i % 3]},{'ab'[i % 2]}")
    write_bomb(root / "bomb1.nii", (20000, 20000, 3))
    write_bomb(root / "bomb2.nii", (4, 4, 10**12), nifti2=True)
    lines += ["bomb1.nii,p20,train,a", "bomb2.nii,p21,train,b"]
    (root / "data.csv").write_text("\n".join(lines) + "\n")
    return root / "data.csv"


def test_header_bombs_are_named_failed_rows(tmp_path):
    csv = bomb_csv(tmp_path)
    assert (tmp_path / "bomb1.nii").stat().st_size == 352 and (tmp_path / "bomb2.nii").stat().st_size == 672
    index = build_index("csv", csv)
    assert len(index) == 12
    problems = {Path(p.source).name: p.message for p in index.problems}
    assert set(problems) == {"bomb1.nii", "bomb2.nii"}
    assert "20000x20000x3" in problems["bomb1.nii"] and "352 bytes" in problems["bomb1.nii"]
    assert "4x4x1000000000000" in problems["bomb2.nii"]
    for name in ("bomb1.nii", "bomb2.nii"):  # the decoding path refuses them too, before reading
        with pytest.raises(DatasetError, match=name):
            load_canonical_volume(str(tmp_path / name))


def test_datasets_check_on_bombs_in_bounded_memory(tmp_path):
    """`featx datasets check --decode -1` under a 3 GiB address-space limit: both bombs named, 12 rows decoded."""
    csv = bomb_csv(tmp_path)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (2**30 * 3, 2**30 * 3))"
    code = f"{limit}\nfrom featx.cli import app\napp(['datasets', 'check', 'csv', '{csv}', '--decode', '-1'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "decoded 12 samples, 0 failed" in done.stdout
    assert "bomb1.nii" in done.stdout and "bomb2.nii" in done.stdout


def test_voxel_ceiling_for_compressed_volumes(tmp_path):
    path = write_nifti(tmp_path / "v.nii.gz", np.zeros((16, 16, 8), np.int16))
    write_nifti(tmp_path / "w.nii.gz", np.zeros((16, 16, 8), np.int16))
    assert canonical_shape(str(path)) == (16, 16, 8)
    with pytest.raises(DatasetError, match="above the ceiling of 1,000.*max_voxels"):
        canonical_shape(str(path), max_voxels=1000)
    csv = tmp_path / "d.csv"
    csv.write_text("path,patient_id,split,label\nv.nii.gz,p0,train,a\nw.nii.gz,p1,test,b\n")
    with pytest.raises(DatasetError, match="ceiling"):
        build_index("csv", csv, max_voxels=1000)  # every volume refused: nothing left to index
    assert len(build_index("csv", csv, max_voxels=4096)) == 16


def metadata_csv(root: Path, header: str, rows: list[str]) -> Path:
    for i in range(len(rows)):
        write_png(root / f"i{i}.png", pattern(i % 2, 16, seed=i))
    (root / "m.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return root / "m.csv"


ROWS = [f"i{i}.png,p{i},{('train', 'val', 'test')[i % 3]},{i % 2},{1 - i % 2},{60 + i},{'MF'[i % 2]},PA,"
        f"\"note, {i}\"" for i in range(6)]
HEADER = "path,patient_id,split,a,b,age,sex,view,notes"


def test_free_text_columns_are_metadata_by_default(tmp_path, capsys):
    index = build_index("csv", metadata_csv(tmp_path, HEADER, ROWS))
    assert index.task == "multilabel" and index.label_names == ["a", "b"]
    assert list(index.metadata.columns) == ["age", "sex", "view", "notes"]
    assert index.metadata["notes"].tolist()[:2] == ["note, 0", "note, 1"]
    assert index.metadata["age"].tolist()[0] == "60"
    assert "label columns a, b; metadata columns age, sex, view, notes" in capsys.readouterr().err
    sub = index.subset(index.table["split"].to_numpy() == "test")
    assert sub.metadata["age"].tolist() == ["62", "65"] and len(sub.metadata) == len(sub)


def test_declared_label_and_metadata_columns(tmp_path):
    csv = metadata_csv(tmp_path, HEADER, ROWS)
    only_a = build_index("csv", csv, labels="a", metadata="age,sex")
    assert only_a.task == "multilabel" and only_a.label_names == ["a"]  # one 0/1 finding
    assert list(only_a.metadata.columns) == ["age", "sex"]  # b, view, notes: neither, left out
    by_sex = build_index("csv", csv, labels=["sex"])
    assert by_sex.task == "binary" and by_sex.label_names == ["F", "M"]
    assert list(by_sex.metadata.columns) == ["a", "b", "age", "view", "notes"]
    with pytest.raises(DatasetError, match="names column 'weight'"):
        build_index("csv", csv, labels="a,weight")
    with pytest.raises(DatasetError, match="both a label and metadata"):
        build_index("csv", csv, labels="a", metadata="a")
    no_meta = build_index("csv", csv, labels="a,b", metadata=[])
    assert no_meta.metadata.shape[1] == 0 and len(no_meta.metadata) == len(no_meta)


def test_metadata_survives_a_split_file(tmp_path):
    csv = metadata_csv(tmp_path, HEADER, ROWS)
    split = tmp_path / "split.csv"
    split.write_text("id,split\n" + "\n".join(f"i{i}.png,{'train' if i < 4 else 'test'}" for i in range(5)) + "\n")
    index = build_index("csv", csv, split_file=str(split))
    assert len(index) == 5 and index.metadata["age"].tolist() == ["60", "61", "62", "63", "64"]


def test_check_names_metadata_columns(tmp_path):
    report = check_dataset("csv", metadata_csv(tmp_path, HEADER, ROWS))
    assert "metadata columns (not labels): age, sex, view, notes" in report.format()
    assert report.to_dict()["metadata_columns"] == ["age", "sex", "view", "notes"]


def test_ct_volumes_without_a_window_are_warned(tmp_path):
    hu = np.full((16, 16, 4), -1000, np.int16)
    hu[4:12, 4:12] = 40
    write_nifti(tmp_path / "ct.nii.gz", hu)
    write_nifti(tmp_path / "mr.nii.gz", np.arange(16 * 16 * 4, dtype=np.int16).reshape(16, 16, 4))
    csv = tmp_path / "ct.csv"
    csv.write_text("path,patient_id,split,label\nct.nii.gz,p0,train,a\nmr.nii.gz,p1,test,b\n")
    index = build_index("csv", csv)
    warning = ct_window_warning(index, "minmax", csv)
    assert warning is not None and str(csv) in warning and "--modality ct" in warning and "-1000" in warning
    assert ct_window_warning(index, "window", csv) is None
    assert ct_window_warning(index.subset(index.table["volume_id"] == "mr.nii.gz"), "minmax", csv) is None
    assert any("--intensity window" in w for w in check_dataset("csv", csv).warnings)
    assert check_dataset("csv", csv, modality="ct").warnings == []


def test_extract_names_the_bombs_and_extracts_the_good_rows(tmp_path):
    from typer.testing import CliRunner

    from featx.cache import FeatureStore
    from featx.cli import app
    from tests.conftest import tiny_extract_args

    (tmp_path / "data").mkdir()
    csv = bomb_csv(tmp_path / "data")
    result = CliRunner().invoke(app, tiny_extract_args("csv", csv, tmp_path / "cache", "--workers", "0"))
    assert result.exit_code == 3, result.output  # partial: rows were quarantined
    named = [line for line in result.output.splitlines() if "bomb" in line and "header declares" in line]
    assert any("bomb1.nii" in line for line in named) and any("bomb2.nii" in line for line in named)
    [store] = (tmp_path / "cache").glob("*/*/*.zarr")
    assert FeatureStore.open(store).valid.sum() == 12

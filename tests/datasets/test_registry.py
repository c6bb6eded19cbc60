import pytest

from featx.datasets import build_index, list_datasets
from featx.datasets.index import DatasetError
from featx.datasets.registry import adapter_options, register_dataset
from tests.datasets.fixtures import make_csv_2d

EXPECTED = {"amos", "chexpert", "csv", "dicom", "figshare_brain_tumor", "montgomery", "msd", "nih_chestxray14",
            "sarscov2_ct"}


def test_all_adapters_registered():
    names = {a.name for a in list_datasets()}
    assert names >= EXPECTED
    assert all(a.description for a in list_datasets())


def test_unknown_dataset_option_and_root(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset"):
        build_index("nope", tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        build_index("csv", tmp_path / "missing.csv")
    csv = make_csv_2d(tmp_path)
    with pytest.raises(DatasetError, match="no option 'frontal'"):
        build_index("csv", csv, frontal=True)
    assert "split_file" in adapter_options("chexpert") and adapter_options("chexpert")["uncertainty"] == "u_zeros"


def test_double_registration_refused():
    with pytest.raises(ValueError, match="twice"):
        register_dataset("csv", "again")(lambda root: None)

import json

import typer
from typer.testing import CliRunner

from featx.cli.datasets import datasets_app
from featx.datasets.check import parse_options
from tests.datasets.fixtures import make_chexpert, make_montgomery, make_nih

runner = CliRunner()


def _app():
    app = typer.Typer()
    app.add_typer(datasets_app, name="datasets")
    return app


def test_list_adapters():
    result = runner.invoke(_app(), ["datasets"])
    assert result.exit_code == 0, result.output
    for name in ("nih_chestxray14", "chexpert", "montgomery", "sarscov2_ct", "amos", "msd", "figshare_brain_tumor",
                 "dicom", "csv"):
        assert name in result.output
    assert "uncertainty=u_zeros" in result.output


def test_check_prints_counts_and_problems(tmp_path):
    root = make_nih(tmp_path)
    (root / "images_001" / "images" / "00000002_001.png").unlink()
    result = runner.invoke(_app(), ["datasets", "check", "nih_chestxray14", str(root), "--decode", "-1",
                                    "--export-split", str(tmp_path / "split.csv")])
    assert result.exit_code == 0, result.output
    assert "15 samples" in result.output and "Cardiomegaly" in result.output
    assert "00000002_001.png" in result.output and "not found" in result.output
    assert (tmp_path / "split.csv").exists()
    strict = runner.invoke(_app(), ["datasets", "check", "nih_chestxray14", str(root), "--strict"])
    assert strict.exit_code == 1


def test_check_json_with_options(tmp_path):
    root = make_chexpert(tmp_path)
    result = runner.invoke(_app(), ["datasets", "check", "chexpert", str(root), "-o", "uncertainty=ignore", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["uncertain_labels"] > 0 and info["task"] == "multilabel"
    seg = runner.invoke(_app(), ["datasets", "check", "montgomery", str(make_montgomery(tmp_path)), "--json"])
    assert json.loads(seg.output)["with_masks"] == 8


def test_check_errors_cleanly(tmp_path):
    result = runner.invoke(_app(), ["datasets", "check", "nih_chestxray14", str(tmp_path)])
    assert result.exit_code == 1 and "Data_Entry_2017.csv" in result.output
    result = runner.invoke(_app(), ["datasets", "check", "chexpert", str(tmp_path), "-o", "bogus"])
    assert result.exit_code == 1


def test_parse_options():
    assert parse_options(["slice_axis=0", "frontal_only=false", "uncertainty=u_ones", "val_fraction=0.2",
                          "task=09"]) == {"slice_axis": 0, "frontal_only": False, "uncertainty": "u_ones",
                                          "val_fraction": 0.2, "task": "09"}

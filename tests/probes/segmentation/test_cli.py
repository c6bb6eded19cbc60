"""`featx probe --setting seg_linear/seg_unet ... --save-masks` end to end on a real store."""

import json

import nibabel as nib
from typer.testing import CliRunner

from featx.cli import app

runner = CliRunner()


def probe(*args):
    return runner.invoke(app, ["probe", *args], env={"COLUMNS": "300"})


def test_seg_settings_write_records_and_masks(shapes_3d, tmp_path):
    out = tmp_path / "r.jsonl"
    result = probe("--store", str(shapes_3d.path), "--setting", "seg_linear", "--setting", "seg_unet", "--seg-epochs", "1",
                   "--seg-lrs", "0.01", "--seg-batch-size", "8", "--bootstrap", "20", "--out", str(out),
                   "--save-masks", str(tmp_path / "masks"))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    headline = [r for r in records if r["split"] == "test" and r["metric"] == "dice_jaccard_mean"]
    assert {r["setting"] for r in headline} == {"seg_linear", "seg_unet"}
    assert all(r["aggregation"] == "per_volume" and r["hyperparameters"]["loss"] == "dice" for r in headline)
    written = sorted((tmp_path / "masks" / "msd_shapes" / "seg_unet").glob("*.nii.gz"))
    assert written and nib.load(written[0]).shape == (48, 48, 5)
    assert "test dice+jaccard mean" in result.output


def test_classification_setting_on_a_seg_store_and_seg_setting_on_a_classification_store(shapes_3d, store_factory, tmp_path):
    result = probe("--store", str(shapes_3d.path), "--store", str(store_factory()), "--setting", "knn",
                   "--setting", "seg_linear", "--seg-epochs", "1", "--seg-lrs", "0.01", "--bootstrap", "0",
                   "--out", str(tmp_path / "r.jsonl"))
    assert result.exit_code == 3, result.output  # EXIT_PARTIAL: some pairs failed, the others were written
    assert "classification setting and this is a segmentation store" in result.output
    assert "seg_linear needs a segmentation store" in result.output


def test_bad_segmentation_options_fail_before_anything_runs(shapes_3d, tmp_path):
    result = probe("--store", str(shapes_3d.path), "--setting", "seg_unet", "--seg-loss", "focal", "--out", str(tmp_path / "r"))
    assert result.exit_code != 0 and "--seg-loss" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = probe("--store", str(shapes_3d.path), "--setting", "seg_unet", "--save-masks", str(blocker / "x"), "--out", str(tmp_path / "r"))
    assert result.exit_code != 0 and "not a writable folder" in result.output
    assert not (tmp_path / "r").exists()

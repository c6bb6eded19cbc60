"""`featx finetune` on the command line: a run that prints its result, and clear refusals."""

from typer.testing import CliRunner

from featx.cli import app
from featx.evaluation.records import read_jsonl
from tests.finetune.conftest import SIZE, TINY_VIT, planted_csv

runner = CliRunner()


def _args(csv, tmp_path, *extra):
    args = ["finetune", "--dataset", "csv", "--root", str(csv), "--size", str(SIZE), "--run-dir", str(tmp_path / "run"),
            "--out", str(tmp_path / "out.jsonl"), "--bootstrap", "20", "--no-progress", "--epochs", "2", *extra]
    for key, value in TINY_VIT.items():
        args += ["--model-override", f"{key}={value}"]
    return args


def test_linear_control_runs_and_prints_test_score_and_parameter_counts(tmp_path):
    csv = planted_csv(tmp_path / "data", n_patients=12)
    result = runner.invoke(app, _args(csv, tmp_path, "--backbone", "dinov2_vits14", "--random-init", "--method", "linear"))
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output
    records = read_jsonl(tmp_path / "out.jsonl")
    head = records[0]
    assert f"finetune-linear: test auroc_macro {head['value']:.4f}" in result.output
    assert f"trainable {head['trainable_params']:,} of {head['total_params']:,} parameters" in result.output
    assert head["trainable_params"] == 32 + 1  # one logit for a binary task


def test_contradictory_or_unknown_choices_are_one_clear_error(tmp_path):
    csv = planted_csv(tmp_path / "data", n_patients=8)
    for extra, message in [
        (["--backbone", "dinov2_vits14", "--from-scratch", "--model", "unet"], "takes no --backbone"),
        (["--model", "unet"], "give --backbone NAME"),
        (["--backbone", "dinov2_vits14", "--random-init", "--method", "adapters"], "--method 'adapters' is unknown"),
        (["--backbone", "dinov2_vits14", "--random-init", "--decoder", "seg_unet"], "--decoder seg_unet: dataset is a binary dataset"),
        (["--backbone", "dinov2_vits14", "--random-init", "--seg-loss", "focal"], "--seg-loss 'focal' is unknown"),
    ]:
        result = runner.invoke(app, _args(csv, tmp_path, *extra))
        assert result.exit_code != 0
        assert result.exit_code == 1 and message in result.output  # one line (featx/cli/errors.py), no traceback
    assert not (tmp_path / "run").exists()


def test_scratch_unet_from_the_command_line(tmp_path):
    from tests.finetune.conftest import planted_shapes_msd

    task = planted_shapes_msd(tmp_path / "seg", n_volumes=6)
    args = ["finetune", "--dataset", "msd", "--root", str(task), "--from-scratch", "--model", "unet", "--size", "32",
            "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out.jsonl"), "--bootstrap", "20",
            "--no-progress", "--epochs", "1", "--batch-size", "8", "--model-override", "channels=[8, 16]",
            "--model-override", "strides=[2]", "--model-override", "num_res_units=0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = read_jsonl(tmp_path / "out.jsonl")
    assert "scratch-unet: test dice_jaccard_mean" in result.output
    assert records[0]["hyperparameters"]["model"] == {"model": "monai.UNet", "channels": [8, 16], "strides": [2], "num_res_units": 0}


def test_segmentation_fine_tuning_reads_the_pixel_store_extract_built(tmp_path):
    from tests.finetune.conftest import SEG_VIT, planted_shapes_msd

    task = planted_shapes_msd(tmp_path / "seg", n_volumes=6)
    overrides = [f"--model-override={k}={v}" for k, v in SEG_VIT.items()]
    common = ["--dataset", "msd", "--root", str(task), "--backbone", "dinov2_vits14", "--random-init", "--size",
              str(SIZE), "--cache", str(tmp_path / "cache"), *overrides]
    extracted = runner.invoke(app, ["extract", *common, "--n-last", "1"])
    assert extracted.exit_code == 0, extracted.output
    result = runner.invoke(app, ["finetune", *common, "--method", "linear", "--decoder", "seg_linear", "--epochs", "1",
                                 "--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "out.jsonl"),
                                 "--bootstrap", "20", "--no-progress"])
    assert result.exit_code == 0, result.output
    headline = next(r for r in read_jsonl(tmp_path / "out.jsonl") if r["metric"] == "dice_jaccard_mean")
    assert f"pixels: read from the pixel store {headline['pixel_store']}" in result.output
    assert f"finetune-linear-seg_linear: test dice_jaccard_mean {headline['value']:.4f}" in result.output

"""Scratch segmentation baselines: the U-Net learns the planted shapes; UNETR runs and records."""

import pytest

from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.runner import run_scratch
from featx.finetune.scratch import build_scratch

TINY_UNET = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0}
TINY_UNETR = {"feature_size": 8, "hidden_size": 32, "mlp_dim": 64, "num_heads": 2}


def test_scratch_unet_learns_the_planted_shapes(tmp_path, shapes_index):
    config = FinetuneConfig(method="full", epochs=8, batch_size=5, head_lr=3e-2, patience=8)
    out = tmp_path / "seg.jsonl"
    run = run_scratch(shapes_index, model_name="unet", size=32, config=config, run_dir=tmp_path / "unet", out=out,
                      model_overrides=TINY_UNET, n_boot=50, progress=False)
    macro = next(r for r in run.records if r["metric"] == "dice_jaccard_macro")
    assert macro["value"] > 0.8 and macro["ci_low"] <= macro["value"] <= macro["ci_high"]
    assert macro["setting"] == "scratch-unet" and macro["trainable_params"] == macro["total_params"] == run.total_params
    assert {r["metric"] for r in run.records} == {"dice_jaccard_macro", "dice", "jaccard"}
    assert {r.get("class") for r in run.records if r["metric"] == "dice"} == {"shape"}  # background excluded
    assert run.result.history[run.result.best_epoch] == max(run.result.history)
    assert macro["hyperparameters"]["model"]["model"] == "monai.UNet"


def test_scratch_unetr_trains_and_records(tmp_path, shapes_index):
    config = FinetuneConfig(method="full", epochs=1, batch_size=10, head_lr=1e-3)
    run = run_scratch(shapes_index, model_name="transunet", size=32, config=config, run_dir=tmp_path / "unetr",
                      model_overrides=TINY_UNETR, n_boot=20, progress=False)
    assert run.records[0]["setting"] == "scratch-transunet" and run.records[0]["hyperparameters"]["model"]["model"] == "monai.UNETR"
    assert run.records[0]["value"] is not None


def test_unknown_model_and_bad_sizes_are_refused():
    with pytest.raises(FinetuneError, match="--model 'segformer' is unknown"):
        build_scratch("segformer", 2, 32)
    with pytest.raises(FinetuneError, match="multiple of 16"):
        build_scratch("transunet", 2, 40, TINY_UNETR)

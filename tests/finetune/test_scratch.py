"""Scratch segmentation baselines: the U-Net learns the planted shapes, scored through the sealed splits
(test masks unreadable while training, the one scoring in the test-use ledger); UNETR runs and records."""

import numpy as np
import pytest
import torch

from featx.evaluation.ledger import LEDGER
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.scratch import build_scratch

from .conftest import scratch

TINY_UNET = {"channels": [8, 16, 32], "strides": [2, 2], "num_res_units": 0}
TINY_UNETR = {"feature_size": 8, "hidden_size": 32, "mlp_dim": 64, "num_heads": 2}


def test_scratch_unet_learns_the_planted_shapes_and_is_scored_like_the_probes(tmp_path, shapes_index):
    config = FinetuneConfig(method="full", epochs=8, batch_size=5, head_lr=3e-2, patience=8)
    out = tmp_path / "seg.jsonl"
    run = scratch(shapes_index, model_name="unet", size=32, config=config, run_dir=tmp_path / "unet", out=out,
                      model_overrides=TINY_UNET, n_boot=50, progress=False)
    headline = {r["metric"]: r for r in run.records if "class" not in r}
    assert set(headline) == {f"{m}{s}" for m in ("dice", "jaccard", "dice_jaccard_mean") for s in ("", "_all_voxels")}
    mean = headline["dice_jaccard_mean"]
    assert mean["value"] > 0.8 and mean["aggregation"] == "per_volume" and mean["level"] == "volume"
    assert headline["dice_jaccard_mean_all_voxels"]["aggregation"] == "all_voxels"
    for record in run.records:
        assert record["ci_low"] <= record["value"] <= record["ci_high"] and record["ci_low"] < record["ci_high"]
    assert mean["setting"] == "scratch-unet" and mean["trainable_params"] == mean["total_params"] == run.total_params
    assert {r.get("class") for r in run.records if r["metric"] == "dice"} == {None, "shape"}  # background excluded
    assert run.result.history[run.result.best_epoch] == max(run.result.history)
    assert mean["hyperparameters"]["model"]["model"] == "monai.UNet"
    where, what = mean["test_use"]["where"], mean["test_use"]["what"]
    assert what == "scratch-unet" and LEDGER.seen(where, what) == [mean["test_use"]["fingerprint"]]
    assert mean["test_reuse"] == 0


def test_scratch_training_cannot_read_test_masks(tmp_path, shapes_index, monkeypatch):
    from featx.evaluation.selection import SealedSplitError
    from featx.finetune import segment

    real = segment.train

    def peeking(model, groups, rows, loss_fn, val_score, config, **kwargs):
        test_row = torch.as_tensor([int(np.flatnonzero(shapes_index.table["split"] == "test")[0])])
        with pytest.raises(SealedSplitError):
            loss_fn(model, test_row)
        return real(model, groups, rows, loss_fn, val_score, config, **kwargs)

    monkeypatch.setattr(segment, "train", peeking)
    config = FinetuneConfig(method="full", epochs=1, batch_size=10, head_lr=1e-3)
    scratch(shapes_index, model_name="unet", size=32, config=config, run_dir=tmp_path / "unet",
                model_overrides=TINY_UNET, n_boot=10, progress=False)


def test_scratch_unetr_trains_and_records(tmp_path, shapes_index):
    config = FinetuneConfig(method="full", epochs=1, batch_size=10, head_lr=1e-3)
    run = scratch(shapes_index, model_name="transunet", size=32, config=config, run_dir=tmp_path / "unetr",
                      model_overrides=TINY_UNETR, n_boot=20, progress=False)
    assert run.records[0]["setting"] == "scratch-transunet" and run.records[0]["hyperparameters"]["model"]["model"] == "monai.UNETR"
    assert run.records[0]["value"] is not None


def test_unknown_model_and_bad_sizes_are_refused():
    with pytest.raises(FinetuneError, match="--model 'segformer' is unknown"):
        build_scratch("segformer", 2, 32)
    with pytest.raises(FinetuneError, match="multiple of 16"):
        build_scratch("transunet", 2, 40, TINY_UNETR)

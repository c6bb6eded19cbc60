"""A fine-tuning run end to end: planted signal learned, records complete, bad input refused early."""

import os

import pytest
import torch

from featx.evaluation.records import REQUIRED, read_jsonl
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.runner import run_finetune

from .conftest import SIZE, TINY_VIT


def _run(index, tmp_path, config, **kwargs):
    return run_finetune(index, backbone="dinov2_vits14", size=SIZE, config=config, run_dir=tmp_path / "run",
                        random_init=True, model_overrides=TINY_VIT, n_boot=50, progress=False, **kwargs)


def test_planted_binary_signal_is_learned_and_recorded_with_parameter_counts(tmp_path, planted_index):
    index = planted_index(n_patients=32)
    config = FinetuneConfig(method="bitfit", epochs=4, batch_size=8, head_lr=2e-2, backbone_lr=1e-2, seed=3)
    out = tmp_path / "results.jsonl"
    run = _run(index, tmp_path, config, out=out)
    records = read_jsonl(out)
    assert records == run.records
    macro = next(r for r in records if r["metric"] == "auroc_macro")
    assert macro["value"] > 0.95 and macro["ci_low"] > 0.8  # chance is 0.5
    assert {r["metric"] for r in records} == {"auroc_macro", "auroc", "accuracy"}
    for record in records:
        assert all(key in record for key in REQUIRED)
        assert record["setting"] == "finetune-bitfit" and record["split"] == "test" and record["selected_on"] == "val"
        assert record["seed"] == 3 and record["random_init"] is True
        assert (record["trainable_params"], record["total_params"]) == (run.trainable_params, run.total_params)
        assert record["n_test"] == int((index.table["split"] == "test").sum())
        assert len(record["val_history"]) == record["epochs_run"]
        assert record["val_score"] == max(record["val_history"])
        assert record["hyperparameters"]["backbone_lr"] == 1e-2 and "lora_r" not in record["hyperparameters"]


def test_planted_multilabel_signal_is_learned_with_full_fine_tuning(tmp_path, planted_index):
    index = planted_index(n_patients=48, multilabel=True)
    config = FinetuneConfig(method="full", epochs=6, batch_size=8, head_lr=1e-2, backbone_lr=3e-3)
    run = _run(index, tmp_path, config)
    values = {r.get("class"): r["value"] for r in run.records if r["metric"].startswith("auroc")}
    assert set(values) == {None, "a", "b"}
    assert values[None] > 0.75 and min(values["a"], values["b"]) > 0.7  # chance is 0.5
    assert run.trainable_params == run.total_params


def test_a_dataset_without_validation_is_refused_before_anything_runs(tmp_path, planted_index):
    index = planted_index(n_patients=12, drop_val=True)
    with pytest.raises(FinetuneError, match="validation split"):
        _run(index, tmp_path, FinetuneConfig(method="full"))
    assert not (tmp_path / "run").exists()


def test_lora_targets_that_match_nothing_stop_before_any_decoding(tmp_path, planted_index):
    index = planted_index(n_patients=8)
    with pytest.raises(FinetuneError, match="attn_q matches no module.*qkv"):
        _run(index, tmp_path, FinetuneConfig(method="lora", lora_targets=("attn_q",)))
    assert not (tmp_path / "run").exists()


def test_segmentation_data_and_absent_gpu_are_clear_errors(tmp_path, planted_index, shapes_index):
    with pytest.raises(FinetuneError, match="--from-scratch"):
        _run(shapes_index, tmp_path, FinetuneConfig(method="full"))
    if not torch.cuda.is_available():
        with pytest.raises(FinetuneError, match="--device cuda"):
            _run(planted_index(n_patients=8), tmp_path, FinetuneConfig(method="full"), device="cuda")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_results_file_is_refused_before_training(tmp_path, planted_index):
    index = planted_index(n_patients=8)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(FinetuneError, match="--out .* cannot write there"):
            _run(index, tmp_path, FinetuneConfig(method="linear"), out=locked / "results.jsonl")
    finally:
        locked.chmod(0o700)
    assert not (tmp_path / "run").exists()


def test_a_3d_dataset_trains_on_slices_and_scores_volumes(tmp_path):
    from featx.datasets import build_index
    from tests.datasets.fixtures import make_csv_3d

    index = build_index("csv", make_csv_3d(tmp_path / "data", n_patients=9, shape=(16, 16, 3)))
    run = _run(index, tmp_path, FinetuneConfig(method="linear", epochs=2, batch_size=4, head_lr=1e-2))
    test_volumes = index.table.loc[index.table["split"] == "test", "volume_id"].nunique()
    assert all(r["level"] == "volume" and r["n_test"] == test_volumes for r in run.records)
    assert run.records[0]["n_train"] == index.table.loc[index.table["split"] == "train", "volume_id"].nunique()

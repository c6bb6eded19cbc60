"""A fine-tuning run end to end: planted signal learned, records complete, bad input refused early."""


import pytest
import torch

from featx.evaluation.records import REQUIRED, read_jsonl
from featx.finetune.config import FinetuneConfig, FinetuneError

from .conftest import SEG_VIT, SIZE, TINY_VIT, fine_tune


def _run(index, tmp_path, config, **kwargs):
    return fine_tune(index, backbone="dinov2_vits14", size=SIZE, config=config, run_dir=tmp_path / "run",
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


def test_decoder_mismatches_and_absent_gpu_are_clear_errors_before_anything_runs(tmp_path, planted_index, shapes_index):
    with pytest.raises(FinetuneError, match=r"--decoder seg_unet reads the patch tokens of the last 5 blocks and "
                                            r"dinov2_vits14 has fewer .*only 2 blocks.*--decoder seg_linear"):
        _run(shapes_index, tmp_path, FinetuneConfig(method="full"))  # TINY_VIT has 2 blocks
    with pytest.raises(FinetuneError, match="--decoder seg_linear: dataset is a binary dataset and decoders segment"):
        _run(planted_index(n_patients=8), tmp_path, FinetuneConfig(method="full", decoder="seg_linear"))
    with pytest.raises(FinetuneError, match="--decoder 'seg_fpn' is unknown; expected one of seg_linear, seg_unet"):
        FinetuneConfig(decoder="seg_fpn")
    if not torch.cuda.is_available():
        with pytest.raises(FinetuneError, match="--device cuda"):
            _run(planted_index(n_patients=8), tmp_path, FinetuneConfig(method="full"), device="cuda")
    assert not (tmp_path / "run").exists()


def test_segmentation_fine_tuning_records_as_the_probes_and_the_pixel_store_gives_the_same_result(tmp_path, shapes_index):
    from featx.datasets.preprocess import PreprocessConfig
    from featx.pipeline.pixel_build import build_pixel_store

    config = FinetuneConfig(method="bitfit", epochs=2, batch_size=8, head_lr=3e-2, backbone_lr=1e-2)
    kwargs = dict(backbone="dinov2_vits14", size=SIZE, config=config, random_init=True, model_overrides=SEG_VIT,
                  n_boot=50, progress=False)
    readers = fine_tune(shapes_index, run_dir=tmp_path / "readers", out=tmp_path / "out.jsonl", **kwargs)
    built = build_pixel_store(shapes_index, PreprocessConfig.for_modality(shapes_index.modality, SIZE),
                              tmp_path / "cache", workers=0, progress=False)
    stored = fine_tune(shapes_index, run_dir=tmp_path / "store", cache=tmp_path / "cache", **kwargs)
    assert readers.source["pixel_source"] == "readers" and readers.records[0]["pixel_store"] is None
    assert stored.source == {"pixel_source": "pixel_store", "pixel_store": str(built.path), "pixel_note": None}
    assert [(r["metric"], r.get("class"), r["value"], r["ci_low"], r["ci_high"]) for r in stored.records] == \
        [(r["metric"], r.get("class"), r["value"], r["ci_low"], r["ci_high"]) for r in readers.records]

    records = read_jsonl(tmp_path / "out.jsonl")
    assert records == readers.records
    headline = {r["metric"]: r for r in records if "class" not in r}
    assert set(headline) == {f"{m}{s}" for m in ("dice", "jaccard", "dice_jaccard_mean") for s in ("", "_all_voxels")}
    assert headline["dice_jaccard_mean"]["aggregation"] == "per_volume"
    assert headline["dice_all_voxels"]["aggregation"] == "all_voxels"
    assert {r["class"] for r in records if "class" in r} == {"shape"}  # background excluded
    test_volumes = shapes_index.table.loc[shapes_index.table["split"] == "test", "volume_id"].nunique()
    for record in records:
        assert all(key in record for key in REQUIRED)
        assert record["ci_low"] <= record["value"] <= record["ci_high"]
        assert record["setting"] == "finetune-bitfit-seg_unet" and record["decoder"] == "seg_unet"
        assert record["hyperparameters"]["decoder"] == "seg_unet" and record["hyperparameters"]["seg_loss"] == "dice"
        assert record["layers"] == [f"block_{i}" for i in range(5)] and record["level"] == "volume"
        assert (record["trainable_params"], record["total_params"]) == (readers.trainable_params, readers.total_params)
        assert record["n_test_units"] == test_volumes and record["n_test"] == int((shapes_index.table["split"] == "test").sum())
        assert record["test_use"]["what"] == "finetune-bitfit-seg_unet" and record["test_reuse"] == 0


def test_an_unwritable_results_file_is_refused_before_training(tmp_path, planted_index, tmpfs):
    from featx.jobs.checks import CheckError
    from tests.tmpfs import read_only

    index = planted_index(n_patients=8)
    read_only(tmpfs)
    try:
        with pytest.raises(CheckError, match="--out .* cannot be created: .* is not writable"):
            _run(index, tmp_path, FinetuneConfig(method="linear"), out=tmpfs / "results.jsonl")
    finally:
        read_only(tmpfs, on=False)
    assert not (tmp_path / "run").exists()


def test_a_3d_dataset_trains_on_slices_and_scores_volumes(tmp_path):
    from featx.datasets import build_index
    from tests.datasets.fixtures import make_csv_3d

    index = build_index("csv", make_csv_3d(tmp_path / "data", n_patients=9, shape=(16, 16, 3)))
    run = _run(index, tmp_path, FinetuneConfig(method="linear", epochs=2, batch_size=4, head_lr=1e-2))
    test_volumes = index.table.loc[index.table["split"] == "test", "volume_id"].nunique()
    assert all(r["level"] == "volume" and r["n_test"] == test_volumes for r in run.records)
    assert run.records[0]["n_train"] == index.table.loc[index.table["split"] == "train", "volume_id"].nunique()


def test_a_fine_tuned_head_records_its_calibration(tmp_path, planted_index):
    index = planted_index(n_patients=24)
    config = FinetuneConfig(method="bitfit", epochs=2, batch_size=8, head_lr=2e-2)
    run = _run(index, tmp_path, config, out=tmp_path / "r.jsonl")
    head = next(r for r in run.records if r["metric"] == "auroc_macro")
    calibration = head["calibration"]
    assert calibration["probabilities"] is True and calibration["binning"] == "equal_mass"
    assert 0 <= calibration["mean"]["brier"] <= 1 and calibration["mean"]["ece_ci"][0] <= calibration["mean"]["ece"]
    assert head["predictions"]["kind"] == "scores"

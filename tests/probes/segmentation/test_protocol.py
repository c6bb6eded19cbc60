"""Decoders trained from cached tokens of a tiny random ViT learn planted shapes; test is scored once."""

import numpy as np
import pytest

from featx.evaluation.records import finalise
from featx.evaluation.selection import SealedSplitError, Splits, TestAlreadyScored
from featx.probes.segmentation import SegOptions, evaluate_decoder, evaluate_seg_fewshot, open_segmentation
from featx.probes.segmentation.records import seg_outcome_records
from tests.probes.segmentation.conftest import mean_mask_dice


@pytest.fixture(scope="module")
def outcomes(shapes_3d):
    data = open_segmentation(shapes_3d)
    unet = evaluate_decoder(data, "seg_unet", options=SegOptions(epochs=25, batch_size=8, in_memory=True), lr=1e-2, n_boot=200)
    linear = evaluate_decoder(data, "seg_linear", options=SegOptions(lrs=(1e-2, 1e-1), epochs=25, batch_size=8, in_memory=True),
                              n_boot=200, val_boot=50)
    return data, unet, linear


def test_unet_far_above_the_mean_mask_and_linear_above_it_but_lower(outcomes):
    data, unet, linear = outcomes
    baseline = mean_mask_dice(data)
    assert unet.test.values["dice"] > baseline + 0.3
    assert linear.test.values["dice"] > baseline + 0.15
    assert unet.test.values["dice"] > linear.test.values["dice"]
    assert unet.test.unit == "volume" and unet.test.n_units == len(set(data.unit_ids[data.positions("test")]))


def test_lr_is_chosen_on_validation_and_the_final_model_retrained_on_train_and_val(outcomes):
    data, _, linear = outcomes
    scores = {h["lr"]: s.values["dice"] for h, s in linear.val}
    assert set(scores) == {1e-2, 1e-1}
    assert linear.hyperparameters["lr"] == max(scores, key=scores.get)
    assert linear.hyperparameters["retrained_on"] == "train+val"
    assert linear.n_train == len(data.positions("train+val"))


def test_records_carry_intervals_provenance_and_aggregation(outcomes, shapes_3d):
    data, unet, linear = outcomes
    records = finalise(seg_outcome_records(linear, data, seed=0) + seg_outcome_records(unet, data, seed=0))
    test = [r for r in records if r["split"] == "test"]
    headline = [r for r in test if r["metric"] == "dice_jaccard_mean"]
    assert {r["setting"] for r in headline} == {"seg_linear", "seg_unet"}
    assert {r["aggregation"] for r in test} == {"per_volume", "all_voxels"}
    for r in test:
        assert r["ci_low"] <= r["value"] <= r["ci_high"], r["metric"]
        assert r["store_key"] == shapes_3d.key and r["random_init"] is True and r["level"] == "volume"
    assert {r["class"] for r in test if "class" in r} == {"shape"}
    val = [r for r in records if r["split"] == "val"]
    assert sum(r["selected"] for r in val if r["metric"] == "dice") == 1


def test_test_masks_are_sealed_during_selection_and_scored_once(shapes_3d):
    data = open_segmentation(shapes_3d)
    with pytest.raises(SealedSplitError):
        data.read_masks(data.positions("test"))
    splits = Splits(data.probe_data())
    with splits.selecting(), pytest.raises(SealedSplitError):
        splits.test_inputs()
    options = SegOptions(epochs=1, batch_size=8)
    evaluate_decoder(data, "seg_linear", options=options, splits=splits, lr=1e-2, n_boot=0)
    with pytest.raises(TestAlreadyScored):
        evaluate_decoder(data, "seg_linear", options=options, splits=splits, lr=1e-2, n_boot=0)


def test_fewshot_on_volumes_reports_each_seed_and_the_mean(shapes_3d):
    data = open_segmentation(shapes_3d)
    problems = []
    outcomes = evaluate_seg_fewshot(data, ["seg_linear"], shots=[1, 2, 99], n_seeds=2, options=SegOptions(epochs=2, batch_size=8),
                                    n_boot=20, problems=problems)
    runs = [o for o in outcomes if "aggregate" not in o.extra]
    assert [(o.hyperparameters["shots"], o.hyperparameters["n_units"]) for o in runs] == [(1, 1), (1, 1), (2, 2), (2, 2)]
    aggregates = [o for o in outcomes if o.extra.get("aggregate") == "mean_over_seeds"]
    assert [o.extra["shots"] for o in aggregates] == [1, 2]
    mean = np.mean([o.test.headline for o in runs if o.hyperparameters["shots"] == 1])
    assert aggregates[0].test.headline == pytest.approx(mean)
    assert len(problems) == 1 and "99 training volumes requested" in problems[0]
    assert all(o.hyperparameters["selected_on"].startswith("fixed") for o in runs)

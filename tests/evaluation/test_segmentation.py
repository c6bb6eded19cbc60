"""Dice / Jaccard per unit and over all voxels, bootstrap intervals, volume reassembly."""

import numpy as np
import pytest

from featx.evaluation.segmentation import (
    ReassemblyError,
    confusion_counts,
    reassemble,
    score_segmentation,
    selection_dice,
    volume_order,
)

CLASSES = ["background", "a", "b"]


def test_confusion_counts_by_hand():
    truth = np.array([[[0, 1], [2, 2]]], dtype=np.uint8)
    pred = np.array([[[1, 1], [2, 0]]], dtype=np.uint8)
    counts = confusion_counts(pred, truth, 3)
    assert counts.tolist() == [[[1, 1, 0], [1, 0, 1]]]  # class a: TP1 FP1 FN0; class b: TP1 FP0 FN1


def test_per_unit_and_pooled_differ_as_defined():
    # unit u0: class a perfect on 1 pixel; unit u1: class a 4 true pixels, 2 found, no false positives
    truth = np.zeros((2, 4, 4), np.uint8)
    pred = np.zeros((2, 4, 4), np.uint8)
    truth[0, 0, 0] = pred[0, 0, 0] = 1
    truth[1, 0, :4] = 1
    pred[1, 0, :2] = 1
    scored = score_segmentation(pred, truth, np.array(["u0", "u1"]), np.array(["p0", "p1"]),
                                class_names=CLASSES[:2], unit="volume", n_boot=0)
    d1 = 2 * 2 / (2 * 2 + 0 + 2)
    assert scored.values["dice"] == pytest.approx((1.0 + d1) / 2)
    assert scored.values["dice_all_voxels"] == pytest.approx(2 * 3 / (2 * 3 + 0 + 2))
    assert scored.values["jaccard"] == pytest.approx((1.0 + 2 / 4) / 2)
    assert scored.values["dice_jaccard_mean"] == pytest.approx((scored.values["dice"] + scored.values["jaccard"]) / 2)
    assert scored.aggregation == "per_volume" and scored.pooled == "all_voxels"


def test_class_absent_from_truth_and_prediction_is_left_out_of_that_units_mean():
    truth = np.zeros((2, 2, 2), np.uint8)
    truth[0, 0, 0] = 1
    pred = truth.copy()
    scored = score_segmentation(pred, truth, np.array(["u0", "u1"]), np.array(["p0", "p1"]),
                                class_names=CLASSES[:2], unit="image", n_boot=0)
    assert scored.values["dice"] == 1.0  # u1 has no class a anywhere: not counted as 0 or 1


def test_slices_of_a_volume_sum_into_one_unit():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    pred = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    units = np.array(["v0"] * 3 + ["v1"] * 3)
    by_slice = score_segmentation(pred, truth, units, np.array(["p"] * 6), class_names=CLASSES, unit="volume", n_boot=0)
    stacked = score_segmentation(pred.reshape(2, 24, 8), truth.reshape(2, 24, 8), np.array(["v0", "v1"]),
                                 np.array(["p", "p"]), class_names=CLASSES, unit="volume", n_boot=0)
    assert by_slice.values == pytest.approx(stacked.values)


def test_bootstrap_intervals_bracket_the_estimate_and_narrow_with_more_patients():
    rng = np.random.default_rng(1)

    def scored(n):
        truth = (rng.random((n, 8, 8)) < 0.3).astype(np.uint8)
        pred = np.where(rng.random((n, 8, 8)) < 0.8, truth, 1 - truth).astype(np.uint8)
        ids = np.array([f"i{i}" for i in range(n)])
        return score_segmentation(pred, truth, ids, ids, class_names=CLASSES[:2], unit="image", n_boot=300, seed=0)

    small, large = scored(10), scored(200)
    for s in (small, large):
        for metric, (low, high) in s.intervals.items():
            assert low <= s.values[metric] <= high, metric
        assert (s.per_class_intervals["dice"][:, 0] <= s.per_class["dice"]).all()
    width = lambda s: s.intervals["dice_jaccard_mean"][1] - s.intervals["dice_jaccard_mean"][0]  # noqa: E731
    assert width(large) < width(small)


def test_reassembly_round_trips_a_known_volume_exactly():
    rng = np.random.default_rng(2)
    volumes = {"a": rng.integers(0, 3, (5, 6, 6)).astype(np.uint8), "b": rng.integers(0, 3, (3, 6, 6)).astype(np.uint8)}
    rows = [(v, i) for v, vol in volumes.items() for i in range(len(vol))]
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    slices = np.stack([volumes[v][i] for v, i in shuffled])
    order = volume_order(np.array([v for v, _ in shuffled]), np.array([i for _, i in shuffled]))
    assert set(order) == {"a", "b"}
    for name, volume in volumes.items():
        assert np.array_equal(reassemble(slices, order[name]), volume)


def test_missing_or_repeated_slices_name_the_volume():
    with pytest.raises(ReassemblyError, match=r"volume 'v7'.*slices \[1\] missing"):
        volume_order(np.array(["v7", "v7", "v8"]), np.array([0, 2, 0]), "msd_spleen")
    with pytest.raises(ReassemblyError, match=r"volume 'v8'.*repeated"):
        volume_order(np.array(["v8", "v8"]), np.array([0, 0]))


def test_selection_dice_from_counts_is_the_macro_dice_per_unit():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    pred = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    units = np.array(["v0"] * 2 + ["v1"] * 4)
    scored = score_segmentation(pred, truth, units, units, class_names=CLASSES, unit="volume", n_boot=0)
    assert selection_dice(confusion_counts(pred, truth, 3), units, CLASSES) == pytest.approx(scored.values["dice"])

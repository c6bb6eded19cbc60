import numpy as np
import pytest
import torch

from featx.finetune.segmetrics import macro_dice_jaccard, pixel_counts, score_segmentation


def test_dice_and_jaccard_equal_a_direct_count_over_all_pixels():
    rng = np.random.default_rng(0)
    pred = torch.from_numpy(rng.integers(0, 3, (6, 8, 8)))
    target = torch.from_numpy(rng.integers(0, 3, (6, 8, 8)))
    counts = pixel_counts(pred, target, 3)
    scored = score_segmentation(counts, np.repeat(["p0", "p1", "p2"], 2), ["bg", "x", "y"], n_boot=200)
    p, t = pred.numpy(), target.numpy()
    for i, c in enumerate((1, 2)):
        inter, a, b = ((p == c) & (t == c)).sum(), (p == c).sum(), (t == c).sum()
        assert scored.dice[i] == pytest.approx(2 * inter / (a + b))
        assert scored.jaccard[i] == pytest.approx(inter / (a + b - inter))
    assert scored.dice_jaccard == pytest.approx(np.mean((scored.dice + scored.jaccard) / 2))
    assert scored.dice_jaccard == pytest.approx(macro_dice_jaccard(counts))
    assert scored.dice_jaccard_ci[0] <= scored.dice_jaccard <= scored.dice_jaccard_ci[1]
    assert scored.n_patients == 3 and scored.class_names == ["x", "y"]


def test_perfect_prediction_scores_one():
    target = torch.zeros((2, 4, 4), dtype=torch.long)
    target[:, :2] = 1
    scored = score_segmentation(pixel_counts(target, target, 2), np.array(["a", "b"]), ["bg", "fg"], n_boot=10)
    assert scored.dice_jaccard == 1.0 and scored.dice_jaccard_ci == (1.0, 1.0)

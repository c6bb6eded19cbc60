"""Segmentation scores of the scratch baselines: Dice, Jaccard and their mean (PROTOCOL.md).

Per class (background excluded), over **all pixels** of a split (not per volume), macro over
classes; the 95% interval is the percentile bootstrap over patients (a patient's pixel counts
drawn with replacement).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


def pixel_counts(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> np.ndarray:
    """``(B, C, 3)`` true-positive, predicted and target pixel counts per image and class."""
    out = np.zeros((pred.shape[0], n_classes, 3), dtype=np.int64)
    for c in range(n_classes):
        p, t = pred == c, target == c
        out[:, c, 0] = (p & t).flatten(1).sum(1).cpu().numpy()
        out[:, c, 1] = p.flatten(1).sum(1).cpu().numpy()
        out[:, c, 2] = t.flatten(1).sum(1).cpu().numpy()
    return out


def _dice_jaccard(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """counts ``(..., C, 3)`` -> Dice and Jaccard ``(..., C)`` (NaN where the class is absent in both)."""
    tp, pred, target = counts[..., 0], counts[..., 1], counts[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2.0 * tp / (pred + target)
        jaccard = tp / (pred + target - tp)
    return dice, jaccard


@dataclass
class SegScored:
    """Dice / Jaccard per foreground class and the protocol's mean of the two, with patient CIs."""

    class_names: list[str]
    dice: np.ndarray
    jaccard: np.ndarray
    dice_jaccard: float  # macro over foreground classes of (Dice + Jaccard) / 2
    dice_jaccard_ci: tuple[float, float]
    dice_ci: np.ndarray
    jaccard_ci: np.ndarray
    n_rows: int
    n_patients: int


def macro_dice_jaccard(counts: np.ndarray) -> float:
    """The number model choice maximises: mean over foreground classes of (Dice + Jaccard) / 2."""
    dice, jaccard = _dice_jaccard(counts.sum(0)[1:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean((dice + jaccard) / 2))


def score_segmentation(counts: np.ndarray, patients: np.ndarray, class_names: list[str], *, n_boot: int = 1000, seed: int = 0) -> SegScored:
    """Score per-image ``counts`` (from :func:`pixel_counts`) with a patient bootstrap."""
    fg = counts[:, 1:]
    dice, jaccard = _dice_jaccard(fg.sum(0))
    _, inverse = np.unique(np.asarray(patients).astype(str), return_inverse=True)
    n_pat = int(inverse.max()) + 1 if inverse.size else 0
    per_patient = np.zeros((n_pat, *fg.shape[1:]), dtype=np.float64)
    np.add.at(per_patient, inverse, fg)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_pat, size=(n_boot, n_pat))
    weights = np.zeros((n_boot, n_pat))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_pat), draws.ravel()), 1.0)
    boot = np.einsum("bp,pck->bck", weights, per_patient)
    b_dice, b_jac = _dice_jaccard(boot)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        b_mean = np.nanmean((b_dice + b_jac) / 2, axis=1)

        def ci(values: np.ndarray) -> np.ndarray:
            return np.stack([np.nanpercentile(values, 2.5, 0), np.nanpercentile(values, 97.5, 0)], -1)

        mean_ci = ci(b_mean)
        return SegScored(
            class_names=list(class_names[1:]),
            dice=dice,
            jaccard=jaccard,
            dice_jaccard=float(np.nanmean((dice + jaccard) / 2)),
            dice_jaccard_ci=(float(mean_ci[0]), float(mean_ci[1])),
            dice_ci=ci(b_dice),
            jaccard_ci=ci(b_jac),
            n_rows=int(counts.shape[0]),
            n_patients=n_pat,
        )


def seg_records(scored: SegScored, base: dict) -> list[dict]:
    """The macro mean and each class's Dice and Jaccard, one record each."""
    out = [{**base, "metric": "dice_jaccard_macro", "value": scored.dice_jaccard,
            "ci_low": scored.dice_jaccard_ci[0], "ci_high": scored.dice_jaccard_ci[1]}]
    for metric, values, cis in (("dice", scored.dice, scored.dice_ci), ("jaccard", scored.jaccard, scored.jaccard_ci)):
        for name, value, ci in zip(scored.class_names, values, cis):
            out.append({**base, "metric": metric, "class": name, "value": float(value), "ci_low": float(ci[0]), "ci_high": float(ci[1])})
    return out

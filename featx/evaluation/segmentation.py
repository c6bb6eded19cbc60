"""Segmentation metrics: Dice and Jaccard per class, per unit and over all voxels, with intervals.

Shared by the frozen decoders (:mod:`featx.probes.segmentation`) and fine-tuning
(:mod:`featx.finetune`), so both score masks the same way.

For every foreground class c (background excluded) and unit u (an image in 2D, a
volume in 3D, its slices reassembled in order):

* **per unit** (``per_image`` / ``per_volume``): Dice_uc = 2TP / (2TP + FP + FN) and
  Jaccard_uc = TP / (TP + FP + FN), averaged over the units; a unit where class c is
  absent from both the truth and the prediction has no Dice for c and is left out of
  that class's mean (it is neither a success nor a failure).
* **over all voxels** (``all_pixels`` / ``all_voxels``): TP, FP and FN summed over
  every unit first, then one Dice and one Jaccard per class.

Macro = mean over classes; the headline is the mean of macro Dice and macro Jaccard
(the paper's number). 95% intervals: the percentile bootstrap over patients, with the
same resampling as the classification metrics (:func:`featx.evaluation.metrics.patient_bootstrap_weights`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from featx.evaluation.features import ProbeError
from featx.evaluation.metrics import patient_bootstrap_weights

METRICS = ("dice", "jaccard", "dice_jaccard_mean")


class ReassemblyError(ProbeError):
    """The slices of a volume cannot be put back together (missing or repeated slices)."""


def confusion_counts(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n, C-1, 3)`` TP, FP, FN per image and foreground class."""
    pred = pred.reshape(len(pred), -1)
    truth = truth.reshape(len(truth), -1)
    out = np.zeros((len(pred), n_classes - 1, 3), dtype=np.int64)
    for c in range(1, n_classes):
        p, t = pred == c, truth == c
        out[:, c - 1, 0] = (p & t).sum(1)
        out[:, c - 1, 1] = (p & ~t).sum(1)
        out[:, c - 1, 2] = (~p & t).sum(1)
    return out


def volume_order(volume_ids: np.ndarray, slice_index: np.ndarray, dataset: str = "") -> dict[str, np.ndarray]:
    """Per volume, the positions of its slices in slice order; every slice 0..n-1 exactly once."""
    out: dict[str, np.ndarray] = {}
    volume_ids = np.asarray(volume_ids).astype(str)
    for volume in dict.fromkeys(volume_ids.tolist()):
        positions = np.flatnonzero(volume_ids == volume)
        order = positions[np.argsort(slice_index[positions], kind="stable")]
        found = slice_index[order]
        if not np.array_equal(found, np.arange(len(order))):
            missing = sorted(set(range(int(found.max()) + 1)) - set(found.tolist()))
            repeated = sorted({int(s) for s in found if (found == s).sum() > 1})
            raise ReassemblyError(
                f"{dataset + ': ' if dataset else ''}volume {volume!r} cannot be reassembled: "
                + (f"slices {missing[:10]} missing" if missing else f"slices {repeated[:10]} repeated")
                + " (a slice that could not be decoded?); repair the volume's files or leave the volume out, then run again"
            )
        out[volume] = order
    return out


def reassemble(slices: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The ``(n_slices, S, S)`` volume of the slices at ``order`` (from :func:`volume_order`)."""
    return np.ascontiguousarray(slices[order])


@dataclass
class SegScored:
    """Point estimates and 95% patient-bootstrap intervals of one segmentation."""

    class_names: list[str]  # foreground classes
    unit: str  # "image" or "volume"
    values: dict[str, float]  # "<metric>" (per unit) and "<metric>_<pooled>" macro values
    intervals: dict[str, tuple[float, float]]
    per_class: dict[str, np.ndarray]  # same keys minus the mean: (C-1,) per class
    per_class_intervals: dict[str, np.ndarray]  # (C-1, 2)
    n_units: int = 0
    n_rows: int = 0
    n_patients: int = 0
    empty_classes: list[str] = field(default_factory=list)  # absent from truth and prediction everywhere

    @property
    def aggregation(self) -> str:
        return f"per_{self.unit}"

    @property
    def pooled(self) -> str:
        return "all_voxels" if self.unit == "volume" else "all_pixels"

    @property
    def headline(self) -> float:
        return self.values["dice_jaccard_mean"]


def _numbers(counts: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class per-unit and pooled Dice / Jaccard for each row of ``weights`` ``(B, U)``: (B, C-1)."""
    tp, fp, fn = (counts[..., i].astype(np.float64) for i in range(3))  # (U, C-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice_u = 2 * tp / (2 * tp + fp + fn)
        jac_u = tp / (tp + fp + fn)
        defined = np.isfinite(dice_u)
        w_def = weights @ defined.astype(np.float64)  # (B, C-1)
        out = {
            "dice": (weights @ np.nan_to_num(dice_u)) / w_def,
            "jaccard": (weights @ np.nan_to_num(jac_u)) / w_def,
        }
        stp, sfp, sfn = weights @ tp, weights @ fp, weights @ fn
        out["dice_pooled"] = 2 * stp / (2 * stp + sfp + sfn)
        out["jaccard_pooled"] = stp / (stp + sfp + sfn)
    return out


def _macro(per_class: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(per_class, axis=-1)


def score_segmentation(
    pred: np.ndarray,
    truth: np.ndarray,
    units: np.ndarray,
    patients: np.ndarray,
    *,
    class_names: list[str],
    unit: str,
    n_boot: int = 1000,
    seed: int = 0,
    counts: np.ndarray | None = None,
) -> SegScored:
    """Score predicted against true class-id masks of the same rows.

    ``units`` names each row's unit (volume id, or the image's own id); ``patients``
    its patient. ``counts`` may be given instead of the masks (``pred``/``truth`` None).
    """
    if counts is None:
        if pred.shape != truth.shape:
            raise ProbeError(f"predicted masks {pred.shape} and true masks {truth.shape} differ in shape")
        counts = confusion_counts(pred, truth, len(class_names))
    units = np.asarray(units).astype(str)
    codes, unit_names = _codes(units)
    unit_counts = np.zeros((len(unit_names), counts.shape[1], 3), dtype=np.int64)
    np.add.at(unit_counts, codes, counts)
    first = np.full(len(unit_names), -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    unit_patients = np.asarray(patients).astype(str)[first]
    _, inverse = np.unique(unit_patients, return_inverse=True)
    n_pat = int(inverse.max()) + 1 if inverse.size else 0
    point = _numbers(unit_counts, np.ones((1, len(unit_names))))
    boots: dict[str, list[np.ndarray]] = {k: [] for k in point}
    if n_boot > 0 and len(unit_names):
        rng = np.random.default_rng(seed)
        for _, weights in patient_bootstrap_weights(inverse, n_pat, n_boot, rng):
            for key, value in _numbers(unit_counts, weights).items():
                boots[key].append(value)
    pooled = "all_voxels" if unit == "volume" else "all_pixels"
    names = {"dice": "dice", "jaccard": "jaccard", "dice_pooled": f"dice_{pooled}", "jaccard_pooled": f"jaccard_{pooled}"}
    values, intervals, per_class, per_class_ci = {}, {}, {}, {}
    boot_macro: dict[str, np.ndarray] = {}
    for key, name in names.items():
        per_class[name] = point[key][0]
        values[name] = float(_macro(point[key])[0])
        stacked = np.concatenate(boots[key]) if boots[key] else np.full((0, counts.shape[1]), np.nan)
        boot_macro[name] = _macro(stacked)
        per_class_ci[name] = _percentiles(stacked)
        intervals[name] = tuple(_percentiles(boot_macro[name][:, None])[0])
    for suffix in ("", f"_{pooled}"):
        mean = f"dice_jaccard_mean{suffix}"
        values[mean] = 0.5 * (values[f"dice{suffix}"] + values[f"jaccard{suffix}"])
        both = 0.5 * (boot_macro[f"dice{suffix}"] + boot_macro[f"jaccard{suffix}"])
        intervals[mean] = tuple(_percentiles(both[:, None])[0])
    empty = [c for c, v in zip(class_names[1:], point["dice_pooled"][0]) if not np.isfinite(v)]
    return SegScored(
        class_names=list(class_names[1:]), unit=unit, values=values, intervals=intervals, per_class=per_class,
        per_class_intervals=per_class_ci, n_units=len(unit_names), n_rows=len(counts), n_patients=n_pat,
        empty_classes=empty,
    )


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = list(dict.fromkeys(values.tolist()))
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[v] for v in values], dtype=np.int64), names


def _percentiles(samples: np.ndarray) -> np.ndarray:
    """``(K, 2)`` 2.5th / 97.5th percentiles of each column (NaN where no finite sample)."""
    if samples.shape[0] == 0:
        return np.full((samples.shape[1], 2), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([np.nanpercentile(samples, 2.5, 0), np.nanpercentile(samples, 97.5, 0)], 1)


def selection_dice(counts: np.ndarray, units: np.ndarray, class_names: list[str]) -> float:
    """The number validation selection maximises: macro Dice per unit (no interval), from
    per-row ``counts`` (:func:`confusion_counts`) and each row's unit."""
    units = np.asarray(units).astype(str)
    scored = score_segmentation(None, None, units, units, class_names=class_names, unit="image", n_boot=0, counts=counts)
    return scored.values["dice"]

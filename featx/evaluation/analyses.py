"""What a probe run adds to each test scoring's records: its kept predictions, calibration and subgroups.

Called where a run appends its records (``run_probes``, the segmentation runner): the test
predictions are written beside the results file (:mod:`featx.evaluation.predictions`) and
named in every test record of the scoring; a classification scoring also gets its
calibration records (metrics ``brier`` and ``ece``, per class and ``class: null`` for the mean;
:mod:`featx.evaluation.calibration`) and, where the store has metadata, its subgroup
records (``subgroup_auroc_macro`` per subgroup, ``subgroup_gap`` per grouping;
:mod:`featx.evaluation.subgroups`). These metrics are never headline numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featx.evaluation import calibration, predictions, subgroups
from featx.evaluation.calibration import N_BINS
from featx.evaluation.features import ProbeData
from featx.evaluation.metrics import CI_PATIENTS

_NOT_INHERITED = ("metric", "class", "value", "ci_low", "ci_high", "ci", "ci_resamples", "ci_resamples_lost", "ci_low_support",
                  "seed_mean", "seed_std", "seed_min", "seed_max", "per_seed", "aggregation")


def _base(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _NOT_INHERITED}


def _headline(records: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    return next((r for r in records if r["split"] == "test" and r["metric"] == metric and r.get("class") is None), None)


def calibration_records(base: dict[str, Any], labels: np.ndarray, scores: np.ndarray, patients: np.ndarray,
                        label_names: list[str], *, probabilities: bool, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """Brier and ECE records (per class, then ``class: null`` for the mean over classes)."""
    out = []
    for one in calibration.calibrate(labels, scores, patients, label_names=label_names, n_boot=n_boot, seed=seed):
        name = None if one.name == "mean" else one.name
        common = {**base, "class": name, "probabilities": probabilities, "ci": CI_PATIENTS,
                  "aggregation": "mean_over_classes" if name is None else "class"}
        out.append({**common, "metric": "brier", "value": one.brier, "ci_low": one.brier_ci[0], "ci_high": one.brier_ci[1]})
        out.append({**common, "metric": "ece", "value": one.ece, "ci_low": one.ece_ci[0], "ci_high": one.ece_ci[1],
                    "ece_bins": N_BINS, "ece_binning": "equal_mass",
                    "reliability": [{"mean_score": m, "observed": o, "n": n} for m, o, n in one.bins]})
    return out


def subgroup_records(base: dict[str, Any], labels: np.ndarray, scores: np.ndarray, patients: np.ndarray,
                     metadata: Any, *, n_boot: int, seed: int) -> list[dict[str, Any]]:
    """One ``subgroup_auroc_macro`` record per subgroup (too small ones named, value null) and a ``subgroup_gap`` per grouping."""
    out = []
    for grouping in subgroups.score_subgroups(labels, scores, patients, metadata, n_boot=n_boot, seed=seed):
        for g in grouping.groups:
            out.append({**base, "metric": "subgroup_auroc_macro", "subgroup_column": g.column, "subgroup": g.group,
                        "value": g.value, "ci_low": g.ci[0], "ci_high": g.ci[1], "ci": CI_PATIENTS,
                        "subgroup_rows": g.n_rows, "subgroup_patients": g.n_patients, "too_small": g.too_small or None})
        out.append({**base, "metric": "subgroup_gap", "subgroup_column": grouping.column, "value": grouping.gap,
                    "ci_low": grouping.gap_ci[0], "ci_high": grouping.gap_ci[1], "ci": CI_PATIENTS,
                    "gap_between": list(grouping.gap_between) if grouping.gap_between else None})
    return out


def classification_extras(out: str | Path | None, records: list[dict[str, Any]], scores: np.ndarray | None, data: ProbeData,
                          *, n_boot: int) -> list[dict[str, Any]]:
    """``records`` of one classification outcome with its kept predictions named, plus calibration and subgroup records.

    ``scores`` are the outcome's test scores, in the order of ``data``'s test rows; without them
    (a mean over seeds) the records are returned as they are.
    """
    head = _headline(records, "auroc_macro")
    if scores is None or head is None:
        return records
    test = np.flatnonzero(data.split == "test")
    labels, patients = data.labels[test], data.patients[test]
    metadata = None if data.metadata is None else data.metadata.iloc[test].reset_index(drop=True)
    probabilities = calibration.are_probabilities(head.get("method"))
    if out is not None:
        kept = predictions.TestPredictions("scores", data.ids[test], patients, list(data.label_names), labels=labels,
                                           scores=np.asarray(scores), metadata=metadata)
        field = predictions.save(out, kept, probabilities=probabilities)
        records = [{**r, "predictions": field} if r["split"] == "test" else r for r in records]
        head = _headline(records, "auroc_macro")
    base, seed = _base(head), int(head.get("seed") or 0)
    extra = calibration_records(base, labels, scores, patients, list(data.label_names), probabilities=probabilities,
                                n_boot=n_boot, seed=seed)
    extra += subgroup_records(base, labels, scores, patients, metadata, n_boot=n_boot, seed=seed)
    return records + extra


def segmentation_extras(out: str | Path | None, records: list[dict[str, Any]], counts: np.ndarray | None, units: np.ndarray,
                        patients: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """``records`` of one segmentation outcome with its per-unit TP/FP/FN counts kept and named.

    ``counts`` ``(rows, C-1, 3)`` are the test rows' counts, ``units`` / ``patients`` their unit and patient.
    """
    if out is None or counts is None or _headline(records, "dice_jaccard_mean") is None:
        return records
    ids, unit_patients, per_unit = predictions.unit_counts(counts, units, patients)
    kept = predictions.TestPredictions("unit_counts", ids, unit_patients, list(class_names), counts=per_unit)
    field = predictions.save(out, kept, probabilities=False)
    return [{**r, "predictions": field} if r["split"] == "test" else r for r in records]

"""What a probe run adds to each test scoring's records: its kept predictions, calibration and subgroups.

Called where a run appends its records (``run_probes``, the segmentation runner): the test
predictions are written beside the results file (:mod:`featx.evaluation.predictions`) and
named in every test record of the scoring (``predictions``); the headline record of a
classification scoring (``metric: auroc_macro``) also holds its calibration (``calibration``:
Brier and ECE per class and their mean; :mod:`featx.evaluation.calibration`) and, where the
store has metadata, its subgroups (``subgroups``; :mod:`featx.evaluation.subgroups`). They are
fields of the existing records, not records of their own, so every reader of numbers sees
the same records as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featx.evaluation import calibration, predictions, subgroups
from featx.evaluation.calibration import N_BINS
from featx.evaluation.features import ProbeData
from featx.evaluation.metrics import CI_PATIENTS


def _headline(records: list[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    return next((r for r in records if r["split"] == "test" and r["metric"] == metric and r.get("class") is None), None)


def _kept(out: str | Path, kept: predictions.TestPredictions, probabilities: bool) -> dict[str, Any]:
    """``{"predictions": ...}``, or where they could not be written ``{"predictions_not_kept": why}``: the records still go out."""
    try:
        return {"predictions": predictions.save(out, kept, probabilities=probabilities)}
    except OSError as error:
        return {"predictions_not_kept": f"{predictions.sidecar(out)}: {error.strerror or error}"}


def _interval(ci: tuple[float, float]) -> list[float]:
    return [float(ci[0]), float(ci[1])]


def calibration_field(labels: np.ndarray, scores: np.ndarray, patients: np.ndarray, label_names: list[str], *,
                      probabilities: bool, n_boot: int, seed: int) -> dict[str, Any]:
    """The ``calibration`` field: Brier and ECE (with intervals and reliability bins) per class and their mean."""
    found = calibration.calibrate(labels, scores, patients, label_names=label_names, n_boot=n_boot, seed=seed)

    def one(c: calibration.ClassCalibration) -> dict[str, Any]:
        return {"brier": c.brier, "brier_ci": _interval(c.brier_ci), "ece": c.ece, "ece_ci": _interval(c.ece_ci),
                "reliability": [{"mean_score": m, "observed": o, "n": n} for m, o, n in c.bins]}

    return {"probabilities": probabilities, "bins": N_BINS, "binning": "equal_mass", "ci": CI_PATIENTS,
            "mean": one(found[-1]) if found else None, "per_class": {c.name: one(c) for c in found[:-1]}}


def subgroups_field(labels: np.ndarray, scores: np.ndarray, patients: np.ndarray, metadata: Any, *,
                    n_boot: int, seed: int) -> list[dict[str, Any]]:
    """The ``subgroups`` field: per metadata grouping, each subgroup's macro AUROC (too small ones named) and the gap."""
    out = []
    for grouping in subgroups.score_subgroups(labels, scores, patients, metadata, n_boot=n_boot, seed=seed):
        out.append({
            "column": grouping.column,
            "groups": [{"group": g.group, "value": g.value, "ci": _interval(g.ci), "n_rows": g.n_rows, "n_patients": g.n_patients,
                        "too_small": g.too_small or None} for g in grouping.groups],
            "gap": grouping.gap, "gap_ci": _interval(grouping.gap_ci),
            "gap_between": list(grouping.gap_between) if grouping.gap_between else None,
        })
    return out


def classification_extras(out: str | Path | None, records: list[dict[str, Any]], scores: np.ndarray | None, data: ProbeData,
                          *, n_boot: int) -> list[dict[str, Any]]:
    """``records`` of one classification outcome; its headline test record gains ``predictions``, ``calibration``, ``subgroups``.

    ``scores`` are the outcome's test scores, in the order of ``data``'s test rows; without them
    (a mean over seeds) the records are returned as they are. ``predictions`` (written beside
    ``out``) goes into every test record of the scoring.
    """
    head = _headline(records, "auroc_macro")
    if scores is None or head is None:
        return records
    test = np.flatnonzero(data.split == "test")
    labels, patients = data.labels[test], data.patients[test]
    metadata = None if data.metadata is None else data.metadata.iloc[test].reset_index(drop=True)
    probabilities = calibration.are_probabilities(head.get("method"))
    seed = int(head.get("seed") or 0)
    fields: dict[str, Any] = {
        "calibration": calibration_field(labels, scores, patients, list(data.label_names), probabilities=probabilities,
                                         n_boot=n_boot, seed=seed),
        "subgroups": subgroups_field(labels, scores, patients, metadata, n_boot=n_boot, seed=seed),
    }
    kept: dict[str, Any] = {}
    if out is not None:
        saved = predictions.TestPredictions("scores", data.ids[test], patients, list(data.label_names), labels=labels,
                                            scores=np.asarray(scores), metadata=metadata)
        kept = _kept(out, saved, probabilities)
    return [{**r, **kept, **(fields if r is head else {})} if r["split"] == "test" else r for r in records]


def segmentation_extras(out: str | Path | None, records: list[dict[str, Any]], counts: np.ndarray | None, units: np.ndarray,
                        patients: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """``records`` of one segmentation outcome with its per-unit TP/FP/FN counts kept and named.

    ``counts`` ``(rows, C-1, 3)`` are the test rows' counts, ``units`` / ``patients`` their unit and patient.
    """
    if out is None or counts is None or _headline(records, "dice_jaccard_mean") is None:
        return records
    ids, unit_patients, per_unit = predictions.unit_counts(counts, units, patients)
    kept = predictions.TestPredictions("unit_counts", ids, unit_patients, list(class_names), counts=per_unit)
    field = _kept(out, kept, False)
    return [{**r, **field} if r["split"] == "test" else r for r in records]

"""Warnings for evaluation sets too small to trust: few patients, or a class with few positives.

A test set of 12 volumes can score ``1.000 [1.000, 1.000]``; the number is real but says
little. Each warning goes to the terminal once per store and into every record.
"""

from __future__ import annotations

import numpy as np

from featx.evaluation.features import ProbeData

MIN_PATIENTS = 30
MIN_POSITIVE_PATIENTS = 10


def small_set_warnings(
    data: ProbeData, min_patients: int = MIN_PATIENTS, min_positives: int = MIN_POSITIVE_PATIENTS
) -> list[str]:
    """One sentence per validation/test problem: too few patients, or a class with too few positive patients."""
    warnings: list[str] = []
    binary = data.task == "binary" and data.labels.shape[1] == 2
    for split in ("val", "test"):
        rows = data.split == split
        if not rows.any():
            continue
        patients, inverse = np.unique(data.patients[rows].astype(str), return_inverse=True)
        if len(patients) < min_patients:
            warnings.append(
                f"{split} has only {len(patients)} patients (fewer than {min_patients}): its AUROC and interval are rough"
            )
        labels = np.nan_to_num(data.labels[rows], nan=0.0) > 0.5
        names = data.label_names[1:] if binary else data.label_names  # a binary task's one-hot pair: the positive class
        columns = labels[:, 1:] if binary else labels
        for name, column in zip(names, columns.T):
            positive = len(np.unique(inverse[column]))
            if positive < min_positives:
                warnings.append(
                    f"{split}: class {name!r} has {positive} positive patients (fewer than {min_positives})"
                )
    return warnings

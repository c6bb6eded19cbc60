"""Performance per subgroup of the test set (age band, sex, view ...), and the largest gap between subgroups.

Subgroups come from the sample index's metadata columns (``ProbeData.metadata``): every
column with at most :data:`MAX_GROUPS` distinct values is a grouping (sex, view position,
AP/PA ...); a column named ``age`` (years) is cut into the bands :data:`AGE_BANDS`
(``0-17``, ``18-39``, ``40-59``, ``60-79``, ``80+``; unparsable ages are ``unknown``).

For each subgroup: macro AUROC (mean over the classes defined in the whole subgroup) on the
subgroup's test rows, with a 95% percentile interval from the patient bootstrap of the
whole test set (one resample of patients serves every subgroup, so the subgroups' numbers
are resampled jointly). A subgroup with fewer than :data:`MIN_PATIENTS` patients, or in
which no class has both positives and negatives, is **too small**: it is named with its
reason and no number, never dropped. Per grouping, the **gap** is the best subgroup's
macro AUROC minus the worst's (among those scored), with the interval of that same
difference over the resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from featx.evaluation.metrics import (
    auroc_per_class,
    patient_bootstrap_weights,
    patient_codes,
    percentile_interval,
    weighted_auroc,
)

AGE_BANDS = ((0, 18, "0-17"), (18, 40, "18-39"), (40, 60, "40-59"), (60, 80, "60-79"), (80, 200, "80+"))
MIN_PATIENTS = 10
MAX_GROUPS = 20


@dataclass
class Subgroup:
    """The macro AUROC of one subgroup (``value`` None and ``too_small`` set when it cannot be scored)."""

    column: str
    group: str
    n_rows: int
    n_patients: int
    value: float | None = None
    ci: tuple[float, float] = (float("nan"), float("nan"))
    too_small: str = ""


@dataclass
class Grouping:
    """The subgroups of one metadata column and the largest gap between them."""

    column: str
    groups: list[Subgroup] = field(default_factory=list)
    gap: float | None = None
    gap_ci: tuple[float, float] = (float("nan"), float("nan"))
    gap_between: tuple[str, str] | None = None  # (best, worst)


def age_band(value: str) -> str:
    """The band of an age in years (``unknown`` when not a number)."""
    try:
        age = float(value)
    except (TypeError, ValueError):
        return "unknown"
    for low, high, name in AGE_BANDS:
        if low <= age < high:
            return name
    return "unknown"


def groupings(metadata: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """The grouping columns of ``metadata``: ``age`` as bands (named ``age_band``), others as they are."""
    out: dict[str, np.ndarray] = {}
    if metadata is None:
        return out
    for column in metadata.columns:
        values = metadata[column].astype(str).to_numpy()
        if str(column).lower() == "age":
            out["age_band"] = np.array([age_band(v) for v in values])
        elif 1 < len(set(values.tolist())) <= MAX_GROUPS:
            out[str(column)] = values
    return out


def score_subgroups(
    labels: np.ndarray,
    scores: np.ndarray,
    patients: np.ndarray,
    metadata: pd.DataFrame | None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    min_patients: int = MIN_PATIENTS,
) -> list[Grouping]:
    """Per grouping column, each subgroup's macro AUROC with an interval, and the largest gap."""
    labels = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    patients = np.asarray(patients).astype(str)
    inverse, n_pat = patient_codes(patients)
    weights = (np.concatenate([w for _, w in patient_bootstrap_weights(inverse, n_pat, n_boot, np.random.default_rng(seed))])
               if n_boot > 0 else np.zeros((0, len(labels))))
    out = []
    for column, values in groupings(metadata).items():
        grouping = Grouping(column)
        boots: dict[str, np.ndarray] = {}
        for group in sorted(set(values.tolist())):
            rows = np.flatnonzero(values == group)
            sub = Subgroup(column, group, int(rows.size), int(np.unique(patients[rows]).size))
            point = auroc_per_class(labels[rows], scores[rows])
            defined = np.isfinite(point)
            if sub.n_patients < min_patients:
                sub.too_small = f"{sub.n_patients} patients (fewer than {min_patients})"
            elif not defined.any():
                sub.too_small = "no class has both positives and negatives"
            else:
                sub.value = float(point[defined].mean())
                if n_boot > 0:
                    per_class = weighted_auroc(labels[rows], scores[rows], weights[:, rows])[:, defined]
                    boots[group] = np.where(np.isfinite(per_class).all(1), per_class.mean(1), np.nan)
                    sub.ci = percentile_interval(boots[group])
            grouping.groups.append(sub)
        scored = [g for g in grouping.groups if g.value is not None]
        if len(scored) > 1:
            best = max(scored, key=lambda g: g.value)
            worst = min(scored, key=lambda g: g.value)
            grouping.gap, grouping.gap_between = best.value - worst.value, (best.group, worst.group)
            if n_boot > 0:
                grouping.gap_ci = percentile_interval(boots[best.group] - boots[worst.group])
        out.append(grouping)
    return out

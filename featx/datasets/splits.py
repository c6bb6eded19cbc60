"""Patient-level splits: official lists, systematic sampling, import and export.

Systematic sampling follows the paper's released code: the units (here always
patients, never images) are put in a fixed order and every (N / k)-th one goes to
the test set, ``k = round(N * test)``; the same is done on the rest for validation.
Unlike the released code, featx samples patients (CheXpert's validation set there
was drawn per image, so a patient could sit on both sides) and refuses any split
with a patient in two subsets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.csv_files import read_csv_file
from featx.datasets.index import SPLITS, DatasetError, Problem, SampleIndex, check_patient_level

__all__ = [
    "DEFAULT_PROPORTIONS",
    "PAPER_PROPORTIONS",
    "SplitProportions",
    "apply_split_file",
    "assign_systematic",
    "check_patient_level",
    "export_split",
    "natural_key",
    "proportions_for",
    "read_split_file",
    "split_summary",
    "systematic_indices",
    "systematic_patient_split",
]


@dataclass(frozen=True)
class SplitProportions:
    """Fractions of patients that go to validation and test; the rest is train."""

    val: float
    test: float
    note: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.val < 1 and 0 <= self.test < 1 and self.val + self.test < 1):
            raise DatasetError(f"split proportions val={self.val}, test={self.test} must be in [0, 1) and sum below 1")


# Patient counts of the paper's splits (released code), as fractions of the dataset.
PAPER_PROPORTIONS: dict[str, SplitProportions] = {
    "sarscov2_ct": SplitProportions(50 / 210, 70 / 210, "paper: 210 patients -> 90 train / 50 val / 70 test"),
    "figshare_brain_tumor": SplitProportions(50 / 233, 70 / 233, "paper: 233 patients -> 113 / 50 / 70"),
    "msd_hippocampus": SplitProportions(60 / 260, 80 / 260, "paper: 260 volumes -> 120 / 60 / 80"),
    "msd_spleen": SplitProportions(10 / 41, 15 / 41, "paper: 41 volumes -> 16 / 10 / 15"),
    "msd_heart": SplitProportions(4 / 20, 4 / 20, "paper: 20 volumes; 12 / 4 / 4 inferred from its slice counts"),
    "amos": SplitProportions(20 / 150, 50 / 150, "paper: 150 volumes; ~100 / 20 / 50 inferred from slice counts"),
    "montgomery": SplitProportions(0.2, 0.3, "not published in the paper's code; featx default"),
    # Datasets with an official test set: only the validation fraction (of the training patients) applies.
    "nih_chestxray14": SplitProportions(0.1, 0.0, "official test_list.txt; 10% of train_val patients -> val"),
    "chexpert": SplitProportions(10_000 / 161_590, 0.0, "official valid.csv is the test set; ~10k train images -> val"),
}
DEFAULT_PROPORTIONS = SplitProportions(0.2, 0.3, "featx default for datasets without a published split")


def proportions_for(dataset: str, val: float | None = None, test: float | None = None) -> SplitProportions:
    """The paper's proportions for ``dataset`` (or the default), with ``val`` / ``test`` overriding them."""
    base = PAPER_PROPORTIONS.get(dataset, DEFAULT_PROPORTIONS)
    if val is None and test is None:
        return base
    return SplitProportions(base.val if val is None else float(val), base.test if test is None else float(test), "user")


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Sort key that orders 'patient 2' before 'patient 10'."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(str(text)))


def systematic_indices(n: int, k: int) -> np.ndarray:
    """``k`` evenly spaced indices out of ``n`` (the paper's ``arange(0, n, n/k).round()``)."""
    if k <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    if k > n:
        raise DatasetError(f"cannot sample {k} of {n} units")
    idx = np.round(np.arange(k) * (n / k)).astype(np.int64)
    idx = np.minimum(idx, n - 1)
    if len(np.unique(idx)) != k:  # cannot happen for k <= n, kept as a guard
        raise DatasetError(f"systematic sampling of {k} of {n} gave duplicate indices")
    return idx


def _count(n: int, fraction: float) -> int:
    if fraction <= 0 or n == 0:
        return 0
    return int(min(n - 1, max(1, round(n * fraction)))) if n >= 3 else 0


def systematic_patient_split(
    patients: Sequence[str], proportions: SplitProportions, *, test: bool = True
) -> dict[str, str]:
    """Patient -> split by systematic sampling over ``patients`` in the given order.

    ``test=False`` samples only validation (for datasets whose test set is official),
    with ``proportions.val`` taken as a fraction of these patients.
    """
    order = list(dict.fromkeys(patients))  # unique, first-appearance order
    assignment = dict.fromkeys(order, "train")
    rest = order
    if test:
        k = _count(len(order), proportions.test)
        chosen = set(systematic_indices(len(order), k).tolist())
        for i in chosen:
            assignment[order[i]] = "test"
        rest = [p for i, p in enumerate(order) if i not in chosen]
    if proportions.val > 0:
        # val is a fraction of all patients: convert to a count, then sample it from the rest.
        n_val = _count(len(order), proportions.val) if test else _count(len(rest), proportions.val)
        n_val = min(n_val, max(len(rest) - 1, 0))
        for i in systematic_indices(len(rest), n_val):
            assignment[rest[int(i)]] = "val"
    return assignment


def assign_systematic(
    table: pd.DataFrame,
    proportions: SplitProportions,
    *,
    rows: np.ndarray | None = None,
    test: bool = True,
) -> pd.DataFrame:
    """Fill ``table['split']`` by systematic sampling of patients in order of first appearance.

    ``rows`` (boolean) limits the sampling to those rows (e.g. NIH's official
    train_val list), whose split is then overwritten; other rows keep theirs.
    """
    table = table.copy()
    if "split" not in table:
        table["split"] = "train"
    mask = np.ones(len(table), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    patients = table.loc[mask, "patient_id"].astype(str).tolist()
    assignment = systematic_patient_split(patients, proportions, test=test)
    table.loc[mask, "split"] = table.loc[mask, "patient_id"].astype(str).map(assignment).to_numpy()
    return table


# ---------------------------------------------------------------------------------------------
# Import / export of the split in use.
# ---------------------------------------------------------------------------------------------

_ID_COLUMNS = ("id", "sample_id", "volume_id", "patient_id", "path", "image", "Image Index", "Path")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test"}


def read_split_file(path: str | Path) -> pd.DataFrame:
    """A CSV of ``id, split`` (ids are sample, volume or patient ids; splits train/val/test).

    Returns a frame with columns ``id`` and ``split`` (normalised: 'validation' -> 'val').
    """
    path = Path(path)
    frame = read_csv_file(path, "split file")
    if "split" not in frame.columns:
        raise DatasetError(f"{path}: split file needs a 'split' column (has {list(frame.columns)})")
    id_column = next((c for c in _ID_COLUMNS if c in frame.columns), None)
    if id_column is None:
        raise DatasetError(f"{path}: split file needs an id column, one of {list(_ID_COLUMNS)}")
    if frame.empty:
        raise DatasetError(f"{path}: the split file has a header but no rows")
    splits = frame["split"].str.strip().str.lower().map(_SPLIT_ALIASES)
    if splits.isna().any():
        line = int(np.argmax(splits.isna().to_numpy())) + 2
        raise DatasetError(f"{path}: line {line} has split {frame['split'].iloc[line - 2]!r}; expected train, val or test")
    ids = frame[id_column].str.strip()
    out = pd.DataFrame({"id": ids, "split": splits})
    dup = out[out["id"].duplicated(keep=False)]
    if len(dup):
        conflicting = dup.groupby("id")["split"].nunique()
        if (conflicting > 1).any():
            raise DatasetError(f"{path}: id {conflicting[conflicting > 1].index[0]!r} is listed in two splits")
        out = out.drop_duplicates("id")
    return out.reset_index(drop=True)


def apply_split_file(index: SampleIndex, path: str | Path) -> SampleIndex:
    """Replace the index's split with the one in ``path``; refuse a split that leaks a patient.

    Ids are matched against sample ids, then volume ids, then patient ids, then file
    names (whichever matches most). Samples the file does not list are dropped and
    recorded in ``problems`` (the paper used subsets of some datasets); ids in the
    file that match nothing are recorded too.
    """
    path = Path(path)
    wanted = read_split_file(path)
    mapping = dict(zip(wanted["id"], wanted["split"], strict=True))
    table = index.table
    candidates = {
        "sample_id": table["sample_id"],
        "volume_id": table["volume_id"],
        "patient_id": table["patient_id"],
        "file name": table["source"].map(lambda s: Path(s).name),
    }
    best_name, best_keys = max(candidates.items(), key=lambda item: item[1].isin(mapping.keys()).sum())
    matched = best_keys.isin(mapping.keys()).to_numpy()
    if not matched.any():
        raise DatasetError(f"{path}: none of its {len(mapping)} ids matches a sample, volume or patient of {index.dataset}")
    problems = list(index.problems)
    n_dropped = int((~matched).sum())
    if n_dropped:
        problems.append(Problem(str(path), f"{n_dropped} of {len(table)} samples are not listed and were left out"))
    unknown = set(mapping) - set(best_keys[matched])
    if unknown:
        problems.append(Problem(str(path), f"{len(unknown)} listed ids match no sample, e.g. {sorted(unknown)[0]!r}"))
    new_table = table[matched].copy()
    new_table["split"] = best_keys[matched].map(mapping).to_numpy()
    try:
        check_patient_level(new_table)
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    return SampleIndex(
        dataset=index.dataset,
        task=index.task,
        modality=index.modality,
        label_names=list(index.label_names),
        table=new_table.reset_index(drop=True),
        labels=index.labels[matched],
        problems=problems,
        metadata=index.metadata[matched],
    )


def export_split(index: SampleIndex, path: str | Path, *, level: str = "auto") -> Path:
    """Write the split in use as a CSV that :func:`apply_split_file` reads back.

    ``level``: 'sample' (one row per sample), 'volume' (one per volume; 2D samples
    are their own volume), 'patient', or 'auto' (volume for 3D datasets, else sample).
    Columns: ``id, split, patient_id``.
    """
    path = Path(path)
    table = index.table
    if level == "auto":
        level = "volume" if index.is_3d else "sample"
    if level == "sample":
        out = pd.DataFrame({"id": table["sample_id"], "split": table["split"], "patient_id": table["patient_id"]})
    elif level == "volume":
        ids = table["volume_id"].where(table["volume_id"] != "", table["sample_id"])
        out = pd.DataFrame({"id": ids, "split": table["split"], "patient_id": table["patient_id"]}).drop_duplicates("id")
    elif level == "patient":
        check_patient_level(table)
        out = table[["patient_id", "split"]].drop_duplicates("patient_id").rename(columns={"patient_id": "id"})
        out["patient_id"] = out["id"]
    else:
        raise DatasetError(f"unknown split export level {level!r}; expected sample, volume, patient or auto")
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


def split_summary(index: SampleIndex) -> pd.DataFrame:
    """Per split: samples, volumes, patients, and positives (or members) per class."""
    table = index.table
    rows = []
    for split in SPLITS:
        mask = (table["split"] == split).to_numpy()
        sub = table[mask]
        record: dict[str, object] = {
            "split": split,
            "samples": int(mask.sum()),
            "volumes": int(sub.loc[sub["volume_id"] != "", "volume_id"].nunique()),
            "patients": int(sub["patient_id"].nunique()),
        }
        if index.task != "segmentation":
            labels = index.labels[mask]
            for j, name in enumerate(index.label_names):
                record[name] = int(np.nansum(labels[:, j] == 1)) if len(labels) else 0
        rows.append(record)
    return pd.DataFrame(rows)


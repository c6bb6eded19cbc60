"""The sample index: what every dataset adapter produces and every later stage reads.

One row per sample the backbone sees: a 2D image, or one slice of a volume. Rows keep
their patient, split, volume id and slice index so that splits stay patient-level,
3D classification can average a volume's slices and segmentation can reassemble it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Task = Literal["multilabel", "multiclass", "binary", "segmentation"]
Modality = Literal["xray", "ct", "mri", "other"]

TASKS: tuple[str, ...] = ("multilabel", "multiclass", "binary", "segmentation")
MODALITIES: tuple[str, ...] = ("xray", "ct", "mri", "other")
SPLITS: tuple[str, ...] = ("train", "val", "test")

# Columns of SampleIndex.table, in order, with their dtypes.
COLUMNS: dict[str, str] = {
    "sample_id": "str",  # unique within the dataset, stable across runs
    "patient_id": "str",
    "split": "str",  # one of SPLITS
    "source": "str",  # absolute path of the file (or series folder) holding the pixels
    "reader": "str",  # name in featx.datasets.readers.READERS
    "volume_id": "str",  # "" for 2D samples
    "slice_index": "int64",  # -1 for 2D samples
    "slice_axis": "int64",  # axis of the canonical (RAS) volume cut along; -1 for 2D
    "mask_source": "str",  # "" when the sample has no mask
    "mask_reader": "str",  # name in featx.datasets.readers.MASK_READERS, "" when no mask
}


class DatasetError(ValueError):
    """A dataset cannot be indexed or read; the message names the file and the problem."""


@dataclass(frozen=True)
class Problem:
    """A quarantined input: the file and what is wrong with it. The rest stays usable."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass
class SampleIndex:
    """Samples of one dataset with their labels.

    ``labels`` is ``(N, C)`` float32 aligned with ``table``: 0/1 per class for
    multi-label (NaN where a label is unknown and must be ignored), one-hot for
    multi-class and binary (C = number of classes), ``(N, 0)`` for segmentation,
    whose classes (background first) are ``label_names`` and whose targets are masks.
    ``metadata`` holds free-text columns (age, sex, view, notes ...) as strings, one row
    per sample aligned with ``table``; a frame with no columns when there are none.
    """

    dataset: str
    task: Task
    modality: Modality
    label_names: list[str]
    table: pd.DataFrame
    labels: np.ndarray
    problems: list[Problem] = field(default_factory=list)
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        self.table = normalise_table(self.table)
        self.metadata = normalise_metadata(self.metadata, len(self.table), self.dataset)
        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.labels.ndim != 2 or self.labels.shape[0] != len(self.table):
            raise DatasetError(
                f"{self.dataset}: labels have shape {self.labels.shape}, expected ({len(self.table)}, C)"
            )
        if self.task not in TASKS:
            raise DatasetError(f"{self.dataset}: unknown task {self.task!r}; expected one of {TASKS}")
        if self.modality not in MODALITIES:
            raise DatasetError(f"{self.dataset}: unknown modality {self.modality!r}; expected one of {MODALITIES}")
        if self.task != "segmentation" and self.labels.shape[1] != len(self.label_names):
            raise DatasetError(
                f"{self.dataset}: {self.labels.shape[1]} label columns but {len(self.label_names)} label names"
            )
        duplicated = self.table["sample_id"][self.table["sample_id"].duplicated()]
        if len(duplicated):
            raise DatasetError(f"{self.dataset}: duplicate sample ids, e.g. {duplicated.iloc[0]!r}")
        bad_split = ~self.table["split"].isin(SPLITS)
        if bad_split.any():
            row = self.table[bad_split].iloc[0]
            raise DatasetError(f"{row['source']}: split {row['split']!r} is not one of {SPLITS}")

    def __len__(self) -> int:
        return len(self.table)

    @property
    def is_3d(self) -> bool:
        """Whether samples are slices of volumes."""
        return bool((self.table["volume_id"] != "").any())

    def subset(self, mask: np.ndarray) -> SampleIndex:
        """The rows where ``mask`` is true, with their labels."""
        mask = np.asarray(mask, dtype=bool)
        return SampleIndex(
            dataset=self.dataset,
            task=self.task,
            modality=self.modality,
            label_names=list(self.label_names),
            table=self.table[mask].reset_index(drop=True),
            labels=self.labels[mask],
            problems=list(self.problems),
            metadata=self.metadata[mask],
        )


def normalise_table(table: pd.DataFrame) -> pd.DataFrame:
    """Fill the optional columns with their 'absent' values and fix dtypes and order."""
    table = table.copy()
    defaults = {"volume_id": "", "slice_index": -1, "slice_axis": -1, "mask_source": "", "mask_reader": ""}
    for column, default in defaults.items():
        if column not in table:
            table[column] = default
        else:  # rows of a mixed table (2D images beside volume slices) leave these blank
            table[column] = table[column].fillna(default)
    missing = [c for c in COLUMNS if c not in table]
    if missing:
        raise DatasetError(f"sample table lacks columns {missing}")
    for column, dtype in COLUMNS.items():
        table[column] = table[column].astype(np.int64 if dtype == "int64" else str)
    return table[list(COLUMNS)].reset_index(drop=True)


def normalise_metadata(metadata: pd.DataFrame, n_rows: int, dataset: str) -> pd.DataFrame:
    """Metadata columns as strings ("" where blank), one row per sample, index 0..n-1."""
    if metadata.shape[1] == 0:
        return pd.DataFrame(index=pd.RangeIndex(n_rows))
    if len(metadata) != n_rows:
        raise DatasetError(f"{dataset}: metadata has {len(metadata)} rows, expected {n_rows}")
    clash = sorted(set(metadata.columns) & (set(COLUMNS) | {"stamp"}))
    if clash:
        raise DatasetError(f"{dataset}: metadata column {clash[0]!r} clashes with a sample-index column; rename it")
    bad = [str(c) for c in metadata.columns if not str(c) or "/" in str(c) or str(c).startswith(".")]
    if bad:
        raise DatasetError(f"{dataset}: metadata column name {bad[0]!r} cannot be stored; rename it "
                           "(no '/', no leading '.')")
    frame = metadata.reset_index(drop=True).fillna("").astype(str)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def check_patient_level(table: pd.DataFrame) -> None:
    """Refuse a split in which any patient appears in more than one split."""
    splits_per_patient = table.groupby("patient_id")["split"].nunique()
    leaking = splits_per_patient[splits_per_patient > 1]
    if len(leaking):
        patient = leaking.index[0]
        found = sorted(table.loc[table["patient_id"] == patient, "split"].unique())
        raise DatasetError(
            f"patient {patient!r} appears in splits {found} ({len(leaking)} patients in all): "
            "splits must be patient-level"
        )

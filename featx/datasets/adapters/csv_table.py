"""Generic input: a CSV of ``path, patient_id, split`` plus labels and free-text metadata.

Labels are either one 0/1 column per finding (multi-label) or a single ``label``
column (multi-class; two classes make it binary). The other columns (age, sex, view,
notes ...) are metadata, kept as strings beside the index. ``labels=a,b`` and
``metadata=c,d`` declare the columns; undeclared, a ``label`` column (or else every
column holding only 0 and 1) is taken as labels and the rest as metadata. Paths are relative to the CSV and
may be 2D images, NIfTI volumes or DICOM series folders (one series per folder), which are cut into slices along ``slice_axis``
of the canonical (RAS+) orientation; each slice row keeps its volume id and index.
Missing or unreadable volume files are quarantined (listed in ``problems``), the
rest of the table stays usable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.index import DatasetError, Problem, SampleIndex, check_patient_level
from featx.datasets.readers import DEFAULT_MAX_VOXELS, canonical_shape, dicom_canonical_shape
from featx.datasets.registry import register_dataset

REQUIRED = ("path", "patient_id", "split")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: str) -> bool:
    """Whether a file name is a NIfTI volume."""
    return path.lower().endswith(NIFTI_SUFFIXES)


@register_dataset("csv", "Generic CSV: path, patient_id, split, 0/1 label columns or one 'label' column, "
                         "metadata columns")
def index_csv(
    root: Path,
    *,
    name: str | None = None,
    modality: str = "other",
    slice_axis: int = 2,
    labels: str | Sequence[str] | None = None,
    metadata: str | Sequence[str] | None = None,
    max_voxels: int = DEFAULT_MAX_VOXELS,
) -> SampleIndex:
    """Index the CSV file ``root``; ``name`` defaults to the CSV's file stem.

    ``labels`` / ``metadata``: the label and metadata columns (comma-separated or a list).
    ``max_voxels``: volumes declaring more voxels than this are quarantined unread.
    """
    if root.is_dir():
        raise DatasetError(f"{root}: the csv dataset takes a CSV file, not a folder")
    try:
        frame = pd.read_csv(root, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{root}: the CSV is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{root}: cannot parse CSV ({exc})") from exc
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DatasetError(f"{root}: missing required columns {missing} (has {list(frame.columns)})")
    if frame.empty:
        raise DatasetError(f"{root}: the CSV has a header but no rows")
    for column in REQUIRED:
        blank = frame[column].isna()
        if blank.any():
            raise DatasetError(f"{root}: row {int(np.argmax(blank)) + 2} has an empty {column!r}")
    bad_split = ~frame["split"].isin(("train", "val", "test"))
    if bad_split.any():
        line = int(np.argmax(bad_split)) + 2
        raise DatasetError(
            f"{root}: line {line} has split {frame['split'][bad_split].iloc[0]!r}; expected train, val or test"
        )
    label_columns, meta_columns = label_and_metadata_columns(root, frame, _names(labels), _names(metadata))
    task, label_names, label_matrix = _labels(root, frame, label_columns, labels is not None)
    if labels is None and metadata is None and meta_columns:
        print(f"{root.name}: label columns {', '.join(label_columns)}; metadata columns {', '.join(meta_columns)} "
              "(declare them with --option labels=... --option metadata=...)", file=sys.stderr)
    check_patient_level(frame)

    rows: list[dict] = []
    row_labels: list[np.ndarray] = []
    row_meta: list[int] = []
    problems: list[Problem] = []
    for i, record in enumerate(frame.to_dict("records")):
        try:
            source = (root.parent / record["path"]).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a path too long ...
            problems.append(Problem(str(root.parent / record["path"]), f"listed on line {i + 2} of {root.name} "
                                    f"but cannot be resolved ({exc})"))
            continue
        base = {"patient_id": record["patient_id"], "split": record["split"], "source": str(source)}
        if not source.exists():
            problems.append(Problem(str(source), f"listed on line {i + 2} of {root.name} but not found"))
            continue
        volume_reader = "nifti" if is_nifti(record["path"]) else ("dicom_series" if source.is_dir() else "")
        if volume_reader:
            try:
                shape = (canonical_shape(str(source), max_voxels) if volume_reader == "nifti"
                         else dicom_canonical_shape(str(source)))
            except DatasetError as exc:
                problems.append(Problem(str(source), str(exc).removeprefix(f"{source}: ")))
                continue
            for k in range(shape[slice_axis]):
                rows.append(
                    base
                    | {
                        "sample_id": f"{record['path']}#{slice_axis}:{k:04d}",
                        "reader": volume_reader,
                        "volume_id": record["path"],
                        "slice_index": k,
                        "slice_axis": slice_axis,
                    }
                )
                row_labels.append(label_matrix[i])
                row_meta.append(i)
        else:
            rows.append(base | {"sample_id": record["path"], "reader": "image"})
            row_labels.append(label_matrix[i])
            row_meta.append(i)
    if not rows:
        raise DatasetError(f"{root}: none of the {len(frame)} listed files could be indexed: {problems[0]}")
    return SampleIndex(
        dataset=name or root.stem,
        task=task,
        modality=modality,  # type: ignore[arg-type]
        label_names=label_names,
        table=pd.DataFrame(rows),
        labels=np.stack(row_labels),
        problems=problems,
        metadata=frame[meta_columns].iloc[row_meta],
    )


def _names(columns: str | Sequence[str] | None) -> list[str] | None:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``; None stays None."""
    if columns is None:
        return None
    items = columns.split(",") if isinstance(columns, str) else [str(c) for c in columns]
    return [c.strip() for c in items if c.strip()]


def _is_binary(values: pd.Series) -> bool:
    return bool(values.isin(("0", "1", "0.0", "1.0")).all())


def label_and_metadata_columns(
    root: Path, frame: pd.DataFrame, labels: list[str] | None, metadata: list[str] | None
) -> tuple[list[str], list[str]]:
    """(label columns, metadata columns) of the CSV: as declared, else inferred.

    Declared labels: every other column is metadata unless ``metadata`` names them.
    Declared metadata only: the other columns are labels. Neither: a ``label`` column,
    or else the columns holding only 0 and 1, are labels and the rest is metadata (when
    no column holds only 0 and 1, all are taken as labels, so the bad value is named).
    """
    extra = [c for c in frame.columns if c not in REQUIRED]
    for option, declared in (("labels", labels), ("metadata", metadata)):
        unknown = [c for c in declared or [] if c not in extra]
        if unknown:
            raise DatasetError(f"{root}: --option {option} names column {unknown[0]!r}, which the CSV lacks "
                               f"(its columns besides {list(REQUIRED)}: {extra})")
    if labels is not None:
        both = sorted(set(labels) & set(metadata or []))
        if both:
            raise DatasetError(f"{root}: column {both[0]!r} is declared both a label and metadata; choose one")
        return labels, metadata if metadata is not None else [c for c in extra if c not in labels]
    if metadata is not None:
        return [c for c in extra if c not in metadata], metadata
    if "label" in extra:
        return ["label"], [c for c in extra if c != "label"]
    label_columns = [c for c in extra if _is_binary(frame[c])] or extra  # none 0/1: _labels names the bad value
    return label_columns, [c for c in extra if c not in label_columns]


def _labels(
    root: Path, frame: pd.DataFrame, label_columns: list[str], declared: bool
) -> tuple[str, list[str], np.ndarray]:
    """Task, label names and an (N, C) float32 label matrix from the CSV's label columns.

    One column named ``label`` (or one ``declared`` column that is not 0/1) is multi-class;
    otherwise every label column must hold 0 or 1 (multi-label).
    """
    if not label_columns:
        raise DatasetError(f"{root}: no label columns (add 0/1 columns per finding, or one 'label' column, "
                           "or name them with --option labels=a,b)")
    if "label" in label_columns and len(label_columns) > 1:
        raise DatasetError(
            f"{root}: a 'label' column (multi-class) cannot be mixed with other label columns "
            f"{[c for c in label_columns if c != 'label']}"
        )
    single = len(label_columns) == 1
    if single and (label_columns[0] == "label" or (declared and not _is_binary(frame[label_columns[0]]))):
        column = label_columns[0]
        values = frame[column]
        if values.isna().any():
            raise DatasetError(f"{root}: line {int(np.argmax(values.isna())) + 2} has an empty {column!r}")
        names = sorted(values.astype(str).unique())
        if len(names) < 2:
            raise DatasetError(f"{root}: the {column!r} column has a single class {names}; need at least two")
        ids = values.astype(str).map({n: j for j, n in enumerate(names)}).to_numpy()
        return ("binary" if len(names) == 2 else "multiclass"), names, np.eye(len(names), dtype=np.float32)[ids]
    matrix = frame[label_columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(matrix, (0.0, 1.0))
    if bad.any():
        line, col = np.argwhere(bad)[0]
        raise DatasetError(
            f"{root}: line {line + 2}, column {label_columns[col]!r} has value "
            f"{str(frame[label_columns[col]].iloc[line])!r}; label columns must hold 0 or 1 "
            "(declare the others with --option metadata=...)"
        )
    return "multilabel", label_columns, matrix.astype(np.float32)

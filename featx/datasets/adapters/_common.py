"""Helpers shared by the adapters: volume slicing rows, NIfTI segmentation cases, splits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.index import DatasetError, Problem, SampleIndex, check_patient_level
from featx.datasets.readers import canonical_shape
from featx.datasets.splits import assign_systematic, natural_key, proportions_for

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def strip_nifti(name: str) -> str:
    """File name without .nii / .nii.gz."""
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_slice_axis(slice_axis: int) -> int:
    """Validate the slicing axis of a canonical (RAS+) volume: 0 sagittal, 1 coronal, 2 axial."""
    if int(slice_axis) not in (0, 1, 2):
        raise DatasetError(f"slice_axis must be 0 (sagittal), 1 (coronal) or 2 (axial), not {slice_axis!r}")
    return int(slice_axis)


def slice_rows(
    base: dict,
    *,
    volume_id: str,
    n_slices: int,
    slice_axis: int,
    reader: str,
    mask_source: str = "",
    mask_reader: str = "",
) -> list[dict]:
    """One row per slice of a volume, in slice order."""
    return [
        base
        | {
            "sample_id": f"{volume_id}#{slice_axis}:{k:04d}",
            "reader": reader,
            "volume_id": volume_id,
            "slice_index": k,
            "slice_axis": slice_axis,
            "mask_source": mask_source,
            "mask_reader": mask_reader,
        }
        for k in range(n_slices)
    ]


@dataclass(frozen=True)
class VolumeCase:
    """A NIfTI image volume, its label volume (segmentation) and its patient."""

    volume_id: str
    image: Path
    label: Path | None
    patient_id: str
    split: str = "train"


def nifti_case_rows(
    cases: Iterable[VolumeCase], slice_axis: int, problems: list[Problem], *, need_label: bool = True
) -> list[dict]:
    """Slice rows of NIfTI volumes; a missing/unreadable file or a mask whose shape differs
    from its image is quarantined (a Problem naming both files) and the rest kept."""
    rows: list[dict] = []
    for case in cases:
        if not case.image.exists():
            problems.append(Problem(str(case.image), "image volume listed but not found"))
            continue
        try:
            shape = canonical_shape(str(case.image))
        except DatasetError as exc:
            problems.append(Problem(str(case.image), str(exc).removeprefix(f"{case.image}: ")))
            continue
        mask_source = ""
        if case.label is not None or need_label:
            if case.label is None or not case.label.exists():
                problems.append(Problem(str(case.label or case.image), f"label volume for {case.image} not found"))
                continue
            try:
                label_shape = canonical_shape(str(case.label))
            except DatasetError as exc:
                problems.append(Problem(str(case.label), str(exc).removeprefix(f"{case.label}: ")))
                continue
            if label_shape != shape:
                problems.append(
                    Problem(
                        str(case.label),
                        f"mask shape {label_shape} differs from image shape {shape} of {case.image}",
                    )
                )
                continue
            mask_source = str(case.label)
        base = {"patient_id": case.patient_id, "split": case.split, "source": str(case.image)}
        rows += slice_rows(
            base,
            volume_id=case.volume_id,
            n_slices=shape[slice_axis],
            slice_axis=slice_axis,
            reader="nifti",
            mask_source=mask_source,
            mask_reader="nifti" if mask_source else "",
        )
    return rows


def systematic_split(
    table: pd.DataFrame,
    dataset: str,
    *,
    val_fraction: float | None,
    test_fraction: float | None,
    rows: np.ndarray | None = None,
    test: bool = True,
) -> pd.DataFrame:
    """Systematic patient-level split with the paper's proportions (or the given fractions)."""
    return assign_systematic(
        table, proportions_for(dataset, val_fraction, test_fraction), rows=rows, test=test
    )


def sort_rows(rows: list[dict], labels: list | None = None) -> tuple[list[dict], list]:
    """Rows (and their labels) in a deterministic order: by volume (or sample) id in natural
    order, a volume's slices contiguous and in slice order."""

    def key(i: int) -> tuple:
        row = rows[i]
        unit = row.get("volume_id") or row["sample_id"]
        return (natural_key(unit), int(row.get("slice_index", -1)), natural_key(row["sample_id"]))

    order = sorted(range(len(rows)), key=key)
    return [rows[i] for i in order], ([labels[i] for i in order] if labels is not None else [])


def finish(
    *,
    dataset: str,
    task: str,
    modality: str,
    label_names: list[str],
    rows: list[dict],
    labels: np.ndarray | list,
    problems: list[Problem],
    root: Path,
) -> SampleIndex:
    """Build the SampleIndex after checking the split is patient-level and something is left."""
    if not rows:
        first = f": {problems[0]}" if problems else ""
        raise DatasetError(f"{root}: no usable samples found for {dataset}{first}")
    rows, labels = sort_rows(rows, list(labels) if task != "segmentation" else [None] * len(rows))
    table = pd.DataFrame(rows)
    check_patient_level(table)
    matrix = np.asarray(labels, dtype=np.float32)
    if task == "segmentation":
        matrix = np.zeros((len(table), 0), dtype=np.float32)
    return SampleIndex(
        dataset=dataset,
        task=task,  # type: ignore[arg-type]
        modality=modality,  # type: ignore[arg-type]
        label_names=label_names,
        table=table,
        labels=matrix,
        problems=problems,
    )


def find_dir(root: Path, marker: str, *, max_depth: int = 2) -> Path:
    """``root`` or the first folder below it (up to ``max_depth``) that contains ``marker``."""
    if (root / marker).exists():
        return root
    frontier = [root]
    unreadable: list[str] = []
    for _ in range(max_depth):
        nxt = []
        for folder in frontier:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError as exc:  # searched past, and named in the error below if nothing is found
                unreadable.append(f"{folder} ({exc.strerror})")
                children = []
            for child in children:
                if (child / marker).exists():
                    return child
                nxt.append(child)
        frontier = nxt
    skipped = f"; could not list {', '.join(unreadable)}" if unreadable else ""
    raise DatasetError(f"{root}: cannot find {marker!r} here or in a sub-folder (is this the right folder?){skipped}")

"""DICOM input: one folder per series (CT/MR slices), for data not yet in NIfTI.

Expected folder::

    ROOT/<any>/<series folder>/*.dcm      one series per folder (files without extension work
                                          too if they carry the DICM preamble)
    labels.csv                            path,label[,split][,patient_id]  (``labels=PATH``)

``path`` is the series folder relative to ROOT (or a patient id, if the CSV has
``patient_id`` but no ``path``: every series of that patient gets its label). Slices are
ordered along the slice normal (ImagePositionPatient), pixel values are rescaled with
RescaleSlope/RescaleIntercept (CT -> Hounsfield units), the volume is reoriented to RAS+
and cut along ``slice_axis``. A series with inconsistent slice spacing (a missing
slice), duplicate positions, mixed sizes or an unreadable file is quarantined, naming
the file. Patient = the CSV's ``patient_id``, else the DICOM PatientID, else the
top-level folder. Split = the CSV's ``split`` column, else systematic sampling.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.adapters._common import check_slice_axis, finish, slice_rows, sort_rows, systematic_split
from featx.datasets.csv_files import read_csv_file
from featx.datasets.index import SPLITS, DatasetError, Problem, SampleIndex
from featx.datasets.readers import _dicom_files, dicom_canonical_shape
from featx.datasets.registry import register_dataset

MODALITY_TAGS = {"CT": "ct", "MR": "mri", "CR": "xray", "DX": "xray"}


def find_series_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) that directly contain DICOM files, sorted."""
    found = []
    for dirpath, dirnames, _files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if _dicom_files(dirpath):
            found.append(Path(dirpath))
    return sorted(found)


def series_header(folder: Path) -> dict:
    import pydicom

    first = _dicom_files(str(folder))[0]
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    return {"patient": str(ds.get("PatientID", "") or ""), "modality": str(ds.get("Modality", "") or "")}


@register_dataset("dicom", "DICOM series folders (one series per folder) + labels CSV: path,label[,split]")
def index_dicom(
    root: Path,
    *,
    labels: str | None = None,
    slice_axis: int = 2,
    modality: str | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> SampleIndex:
    """Index DICOM series under ``root`` with per-series labels from the CSV ``labels``."""
    slice_axis = check_slice_axis(slice_axis)
    if not labels:
        raise DatasetError(f"{root}: the dicom adapter needs labels=CSV with columns path,label[,split]")
    label_path = Path(labels).expanduser()
    table = read_csv_file(label_path, "labels CSV")
    key = "path" if "path" in table.columns else ("patient_id" if "patient_id" in table.columns else None)
    if key is None or "label" not in table.columns:
        raise DatasetError(f"{label_path}: needs columns 'path' (or 'patient_id') and 'label' (has {list(table.columns)})")
    if table.empty:
        raise DatasetError(f"{label_path}: the CSV has a header but no rows")
    if (table["label"].str.strip() == "").any():
        raise DatasetError(f"{label_path}: line {int(np.argmax(table['label'].str.strip() == '')) + 2} has an empty label")
    has_split = "split" in table.columns
    if has_split:
        bad = ~table["split"].isin(SPLITS)
        if bad.any():
            line = int(np.argmax(bad)) + 2
            raise DatasetError(f"{label_path}: line {line} has split {table['split'][bad].iloc[0]!r}; expected train, val or test")
    class_names = sorted(table["label"].str.strip().unique())
    if len(class_names) < 2:
        raise DatasetError(f"{label_path}: a single class {class_names}; need at least two")
    by_key = {r[key].strip().strip("/"): r for r in table.to_dict("records")}

    problems: list[Problem] = []
    rows, row_labels = [], []
    modalities = set()
    matched = set()
    for folder in find_series_folders(root):
        rel = folder.relative_to(root).as_posix() if folder != root else "."
        try:
            header = series_header(folder)
        except Exception as exc:
            problems.append(Problem(str(folder), f"cannot read DICOM header ({exc})"))
            continue
        lookup = rel if key == "path" else header["patient"]
        record = by_key.get(lookup)
        if record is None:
            problems.append(Problem(str(folder), f"series not listed in {label_path.name}; left out"))
            continue
        matched.add(lookup)
        try:
            shape = dicom_canonical_shape(str(folder))
        except DatasetError as exc:
            problems.append(Problem(str(folder), str(exc)))
            continue
        patient = (record.get("patient_id") or "").strip() or header["patient"] or rel.split("/")[0]
        modalities.add(header["modality"])
        base = {"patient_id": patient, "split": record["split"] if has_split else "train", "source": str(folder)}
        new = slice_rows(base, volume_id=rel, n_slices=shape[slice_axis], slice_axis=slice_axis, reader="dicom_series")
        rows += new
        onehot = np.eye(len(class_names), dtype=np.float32)[class_names.index(record["label"].strip())]
        row_labels += [onehot] * len(new)
    for missing in sorted(set(by_key) - matched):
        problems.append(Problem(str(root / missing), f"listed in {label_path.name} but no DICOM series found"))
    if rows and not has_split:
        rows, row_labels = sort_rows(rows, row_labels)
        frame = systematic_split(pd.DataFrame(rows), "dicom", val_fraction=val_fraction, test_fraction=test_fraction)
        rows = frame.to_dict("records")
    if modality is None:
        found = {MODALITY_TAGS.get(m, "other") for m in modalities}
        modality = found.pop() if len(found) == 1 else "other"
    return finish(dataset=root.name or "dicom", task="binary" if len(class_names) == 2 else "multiclass",
                  modality=modality, label_names=class_names, rows=rows, labels=row_labels, problems=problems,
                  root=root)

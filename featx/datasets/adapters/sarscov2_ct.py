"""SARS-CoV-2 CT (Soares et al. 2020; multi-class release of 2021): 4,173 CT slices of 210 patients.

Expected folder (Kaggle "A COVID multiclass dataset of CT scans", unzipped)::

    ROOT/Covid/Patient 1/1.png ...          80 patients
    ROOT/Healthy/Patient 1/...              50 patients
    ROOT/Others/Patient 1/...               80 patients (other lung diseases)

(an extra top folder such as ``New_Data_CoV2/`` is found automatically). Each patient
folder is one volume: its PNG slices in natural file order give ``slice_index``, so a
classifier can average a patient's slices. Binary task COVID vs non-COVID (Healthy and
Others), as in the paper; ``classes="multiclass"`` keeps the three classes. The slices
are display-windowed 8-bit PNGs, not Hounsfield units, so the modality is ``other``
(no HU window is applied). No official split: systematic sampling of patients with the
paper's proportions (90 / 50 / 70 of 210).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.adapters._common import finish, sort_rows, systematic_split
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.registry import register_dataset
from featx.datasets.splits import natural_key

CLASS_FOLDERS = {"covid": "COVID", "healthy": "Healthy", "others": "Others"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _locate(root: Path) -> Path:
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        names = {p.name.lower() for p in candidate.iterdir() if p.is_dir()}
        if "covid" in names and ({"healthy", "others"} & names):
            return candidate
    raise DatasetError(f"{root}: expected class folders Covid/, Healthy/, Others/ (with one folder per patient)")


@register_dataset("sarscov2_ct", "SARS-CoV-2 CT: Covid/Healthy/Others/<patient>/<slice>.png; one volume per patient")
def index_sarscov2(
    root: Path,
    *,
    classes: str = "binary",
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> SampleIndex:
    """Index the SARS-CoV-2 CT dataset at ``root``; ``classes`` is "binary" or "multiclass"."""
    if classes not in ("binary", "multiclass"):
        raise DatasetError(f"classes must be 'binary' or 'multiclass', not {classes!r}")
    root = _locate(root)
    label_names = ["non-COVID", "COVID"] if classes == "binary" else ["COVID", "Healthy", "Others"]
    problems: list[Problem] = []
    rows, labels = [], []
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name.lower()):
        cls = CLASS_FOLDERS.get(folder.name.lower())
        if cls is None:
            problems.append(Problem(str(folder), "unexpected folder (not Covid, Healthy or Others); ignored"))
            continue
        target = (1 if cls == "COVID" else 0) if classes == "binary" else label_names.index(cls)
        loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if loose:
            problems.append(Problem(str(folder), f"{len(loose)} slice files outside a patient folder; ignored "
                                                  "(patients cannot be told apart)"))
        for patient_dir in sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
            slices = sorted(
                (p for p in patient_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                 and not p.name.startswith(".")),
                key=lambda p: natural_key(p.name),
            )
            if not slices:
                problems.append(Problem(str(patient_dir), "patient folder has no image slices"))
                continue
            volume = f"{cls}/{patient_dir.name}"
            onehot = np.eye(len(label_names), dtype=np.float32)[target]
            for k, path in enumerate(slices):
                rows.append({"sample_id": f"{volume}/{path.name}", "patient_id": volume, "split": "train",
                             "source": str(path), "reader": "image", "volume_id": volume, "slice_index": k,
                             "slice_axis": 2})
                labels.append(onehot)
    if rows:
        rows, labels = sort_rows(rows, labels)
        table = systematic_split(pd.DataFrame(rows), "sarscov2_ct", val_fraction=val_fraction,
                                 test_fraction=test_fraction)
        rows = table.to_dict("records")
    return finish(dataset="sarscov2_ct", task="binary" if classes == "binary" else "multiclass", modality="other",
                  label_names=label_names, rows=rows, labels=labels, problems=problems, root=root)

"""Figshare brain tumour dataset (Cheng et al. 2015): 3,064 T1-weighted contrast-enhanced MRI
slices of 233 patients, three tumour types.

Expected folder (figshare 1512427, the four ``brainTumorDataPublic_*.zip`` unzipped)::

    ROOT/**/1.mat ... 3064.mat       MATLAB v7.3 (HDF5) files with a struct ``cjdata``:
                                     image (512x512 int16), label (1 meningioma, 2 glioma,
                                     3 pituitary), PID (patient id, char), tumorBorder, tumorMask
    ROOT/cvind.mat, README.txt       (ignored)

3-class classification (one-hot); each slice keeps its tumour mask (``mask_reader
mat_v73``) for later use. No official split (cvind.mat holds 5 folds): systematic
sampling of patients in order of first appearance with the paper's proportions
(113 / 50 / 70 of 233). A ``.mat`` that is not v7.3, is truncated, lacks a field or
has a label outside 1-3 is quarantined.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.adapters._common import finish, sort_rows, systematic_split
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.readers import read_figshare_header
from featx.datasets.registry import register_dataset
from featx.datasets.splits import natural_key

CLASSES = ["meningioma", "glioma", "pituitary"]
IGNORED = {"cvind.mat"}


@register_dataset("figshare_brain_tumor", "Figshare brain tumour: MATLAB v7.3 .mat files (cjdata image/label/PID/tumorMask)")
def index_figshare(
    root: Path,
    *,
    with_masks: bool = True,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> SampleIndex:
    """Index the Figshare brain tumour .mat files under ``root``."""
    files = sorted(
        (p for p in root.rglob("*.mat") if p.name not in IGNORED and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )
    if not files:
        raise DatasetError(f"{root}: no .mat files (unzip brainTumorDataPublic_*.zip here)")
    problems: list[Problem] = []
    rows, labels = [], []
    seen: dict[str, Path] = {}
    for path in files:
        if path.name in seen:
            problems.append(Problem(str(path), f"same file name as {seen[path.name]}; duplicate left out"))
            continue
        seen[path.name] = path
        try:
            label, patient, image_shape, mask_shape = read_figshare_header(str(path))
        except DatasetError as exc:
            problems.append(Problem(str(path), str(exc).removeprefix(f"{path}: ")))
            continue
        if label not in (1, 2, 3):
            problems.append(Problem(str(path), f"cjdata/label is {label}; expected 1 (meningioma), 2 (glioma) or 3 (pituitary)"))
            continue
        mask_source = ""
        if with_masks and mask_shape is not None:
            if mask_shape != image_shape:
                problems.append(Problem(str(path), f"cjdata/tumorMask shape {mask_shape} differs from cjdata/image shape {image_shape}"))
                continue
            mask_source = str(path)
        rows.append({"sample_id": path.stem, "patient_id": patient, "split": "train", "source": str(path),
                     "reader": "mat_v73", "mask_source": mask_source, "mask_reader": "mat_v73" if mask_source else ""})
        labels.append(np.eye(3, dtype=np.float32)[label - 1])
    if rows:
        rows, labels = sort_rows(rows, labels)
        table = systematic_split(pd.DataFrame(rows), "figshare_brain_tumor", val_fraction=val_fraction,
                                 test_fraction=test_fraction)
        rows = table.to_dict("records")
    return finish(dataset="figshare_brain_tumor", task="multiclass", modality="mri", label_names=list(CLASSES),
                  rows=rows, labels=labels, problems=problems, root=root)

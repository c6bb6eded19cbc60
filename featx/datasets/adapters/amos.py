"""AMOS 2022 (Ji et al. 2022): abdominal CT (and MRI) with 15 organ labels.

Expected folder (``amos22`` from zenodo 7262581, unzipped)::

    ROOT/dataset.json    labels {"0": "background", "1": "spleen", ..., "15": "prostate/uterus"},
                         training [{"image": "./imagesTr/amos_0001.nii.gz", "label": "./labelsTr/amos_0001.nii.gz"}],
                         validation [{"image": "./imagesVa/...", "label": "./labelsVa/..."}], test [...]
    ROOT/imagesTr, labelsTr, imagesVa, labelsVa, imagesTs

Labelled cases are ``training`` + ``validation``. Case ids below 500 are CT, from 500 on
MRI; ``modality="ct"`` (default, as the paper) keeps CT, ``"mri"`` keeps MRI. Volumes are
reoriented to RAS+ and cut along ``slice_axis`` (2 = axial). ``max_volumes`` takes a
systematic subset of cases (the paper used 150). Split: ``split="systematic"`` (default;
patients sampled with the paper's proportions ~100/20/50) or ``"official"`` (imagesTr ->
train/val by systematic sampling, imagesVa -> test). HU window [-1024, 600] is the
pipeline's CT default.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from featx.datasets.adapters._common import (
    VolumeCase,
    check_slice_axis,
    find_dir,
    finish,
    nifti_case_rows,
    sort_rows,
    strip_nifti,
    systematic_split,
)
from featx.datasets.adapters.msd import label_names_from, read_dataset_json
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.registry import register_dataset
from featx.datasets.splits import systematic_indices

CT_MAX_ID = 500


def case_number(volume_id: str) -> int | None:
    match = re.search(r"(\d+)$", volume_id)
    return int(match.group(1)) if match else None


@register_dataset("amos", "AMOS 2022: dataset.json + imagesTr/labelsTr (+ imagesVa/labelsVa) NIfTI, 15 organs")
def index_amos(
    root: Path,
    *,
    modality: str = "ct",
    slice_axis: int = 2,
    split: str = "systematic",
    max_volumes: int | None = None,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> SampleIndex:
    """Index AMOS at ``root`` (the folder with dataset.json)."""
    slice_axis = check_slice_axis(slice_axis)
    if modality not in ("ct", "mri", "all"):
        raise DatasetError(f"modality must be 'ct', 'mri' or 'all', not {modality!r}")
    if split not in ("systematic", "official"):
        raise DatasetError(f"split must be 'systematic' or 'official', not {split!r}")
    root = find_dir(root, "dataset.json")
    meta_path = root / "dataset.json"
    meta = read_dataset_json(meta_path)
    names = label_names_from(meta, meta_path)
    problems: list[Problem] = []
    cases: list[VolumeCase] = []
    for part, part_split in (("training", "train"), ("validation", "test" if split == "official" else "train")):
        for entry in meta.get(part, []) or []:
            if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
                problems.append(Problem(str(meta_path), f"{part} entry {entry!r} lacks image/label"))
                continue
            image = (root / entry["image"]).resolve()
            volume = strip_nifti(image.name)
            number = case_number(volume)
            is_ct = number is None or number < CT_MAX_ID
            if (modality == "ct" and not is_ct) or (modality == "mri" and is_ct):
                continue
            cases.append(VolumeCase(volume, image, (root / entry["label"]).resolve(), volume, part_split))
    cases.sort(key=lambda c: c.volume_id)
    if max_volumes is not None and len(cases) > int(max_volumes):
        keep = systematic_indices(len(cases), int(max_volumes))
        cases = [cases[int(i)] for i in keep]
    rows = nifti_case_rows(cases, slice_axis, problems)
    if rows:
        rows, _ = sort_rows(rows)
        table = pd.DataFrame(rows)
        if split == "official":
            trainval = (table["split"] != "test").to_numpy()
            table = systematic_split(table, "amos", val_fraction=val_fraction if val_fraction is not None else 0.15,
                                     test_fraction=None, rows=trainval, test=False)
        else:
            table = systematic_split(table, "amos", val_fraction=val_fraction, test_fraction=test_fraction)
        rows = table.to_dict("records")
    return finish(dataset="amos", task="segmentation", modality="mri" if modality == "mri" else "ct",
                  label_names=names, rows=rows, labels=[], problems=problems, root=root)

"""NIH ChestX-ray14 (Wang et al. 2017): 112,120 frontal chest X-rays of 30,805 patients.

Expected folder (as downloaded from the NIH box / Kaggle ``data``)::

    ROOT/Data_Entry_2017.csv          (or Data_Entry_2017_v2020.csv)
    ROOT/train_val_list.txt           official patient-level split
    ROOT/test_list.txt
    ROOT/images_001/images/00000001_000.png ... ROOT/images_012/images/...   (or ROOT/images/)

``Finding Labels`` holds findings separated by ``|`` or ``No Finding``. Labels are the
14 findings (multi-label, 0/1); ``include_no_finding=True`` adds "No Finding" as a 15th.
Test = ``test_list.txt``; validation = a systematic sample of the train_val patients
(``val_fraction``, default 0.1), train = the rest. Rows whose image is missing or whose
labels are not in the label set are quarantined.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.adapters._common import finish, systematic_split
from featx.datasets.csv_files import read_csv_file
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.registry import register_dataset

FINDINGS = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]
NO_FINDING = "No Finding"
CSV_NAMES = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")


def find_images(root: Path) -> dict[str, Path]:
    """File name -> path of every PNG under ``images*/`` (nested ``images/`` folders included)."""
    found: dict[str, Path] = {}
    for top in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("images")):
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                if name.lower().endswith(".png") and not name.startswith("."):
                    found.setdefault(name, Path(dirpath) / name)
    return found


def _read_list(path: Path) -> set[str]:
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


@register_dataset("nih_chestxray14", "NIH ChestX-ray14: Data_Entry_2017.csv + images*/ + official test_list.txt")
def index_nih(
    root: Path,
    *,
    include_no_finding: bool = False,
    val_fraction: float | None = None,
    view_positions: str | None = None,
) -> SampleIndex:
    """Index NIH ChestX-ray14 at ``root``. ``view_positions`` ("PA", "AP" or "PA,AP") filters views."""
    csv_path = next((root / n for n in CSV_NAMES if (root / n).exists()), None)
    if csv_path is None:
        raise DatasetError(f"{root}: no {CSV_NAMES[0]} (is this the ChestX-ray14 folder?)")
    frame = read_csv_file(csv_path)
    needed = ["Image Index", "Finding Labels", "Patient ID"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DatasetError(f"{csv_path}: missing columns {missing} (has {list(frame.columns)})")
    if frame.empty:
        raise DatasetError(f"{csv_path}: the CSV has a header but no rows")
    if view_positions:
        wanted = {v.strip().upper() for v in str(view_positions).split(",")}
        frame = frame[frame.get("View Position", pd.Series("", index=frame.index)).str.upper().isin(wanted)]

    test_file, trainval_file = root / "test_list.txt", root / "train_val_list.txt"
    official = test_file.exists() and trainval_file.exists()
    test_names = _read_list(test_file) if official else set()
    trainval_names = _read_list(trainval_file) if official else set()
    images = find_images(root)
    names = FINDINGS + ([NO_FINDING] if include_no_finding else [])
    position = {n: j for j, n in enumerate(names)}

    problems: list[Problem] = []
    if not official:
        problems.append(Problem(str(root), "no train_val_list.txt/test_list.txt: split by systematic sampling instead"))
    rows, labels = [], []
    for line, record in zip(frame.index + 2, frame.to_dict("records"), strict=True):
        name = record["Image Index"].strip()
        path = images.get(name)
        if path is None:
            problems.append(Problem(str(root / "images" / name), f"listed on line {line} of {csv_path.name} but not found"))
            continue
        findings = [f.strip() for f in record["Finding Labels"].split("|") if f.strip()]
        unknown = [f for f in findings if f not in FINDINGS and f != NO_FINDING]
        if unknown or not findings or (NO_FINDING in findings and len(findings) > 1):
            problems.append(
                Problem(str(path), f"line {line} of {csv_path.name}: labels {record['Finding Labels']!r} outside the label set")
            )
            continue
        vector = np.zeros(len(names), dtype=np.float32)
        for f in findings:
            if f in position:
                vector[position[f]] = 1.0
        if official:
            if name in test_names:
                split = "test"
            elif name in trainval_names:
                split = "train"
            else:
                problems.append(Problem(str(path), "in neither train_val_list.txt nor test_list.txt; left out"))
                continue
        else:
            split = "train"
        patient = record["Patient ID"].strip().lstrip("0") or "0"
        rows.append({"sample_id": name, "patient_id": patient, "split": split, "source": str(path), "reader": "image"})
        labels.append(vector)
    if rows:
        order = sorted(range(len(rows)), key=lambda i: rows[i]["sample_id"])
        rows, labels = [rows[i] for i in order], [labels[i] for i in order]
        table = pd.DataFrame(rows)
        trainval = (table["split"] != "test").to_numpy()
        table = systematic_split(
            table, "nih_chestxray14", val_fraction=val_fraction, test_fraction=None if official else 0.3, rows=trainval, test=not official
        )
        rows = table.to_dict("records")
    return finish(
        dataset="nih_chestxray14", task="multilabel", modality="xray", label_names=names,
        rows=rows, labels=labels, problems=problems, root=root,
    )

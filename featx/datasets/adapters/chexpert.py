"""CheXpert (Irvin et al. 2019): chest X-rays with 14 observations labelled 1 / 0 / -1 (uncertain) / blank.

Expected folder (Stanford AIMI download, "small" = downsampled JPEGs, or the full one)::

    ROOT/train.csv, ROOT/valid.csv
    ROOT/train/patient00001/study1/view1_frontal.jpg ...
    ROOT/valid/patient64541/study1/view1_frontal.jpg ...

where ROOT is ``CheXpert-v1.0-small`` (``variant="small"``) or ``CheXpert-v1.0``
(``variant="full"``); the parent folder holding it works too. ``Path`` in the CSVs
starts with that folder name. Labels: the 5 competition findings (Atelectasis,
Cardiomegaly, Consolidation, Edema, Pleural Effusion), multi-label. Uncertain (-1):
``uncertainty="u_zeros"`` (paper default) -> 0, ``"u_ones"`` -> 1, ``"ignore"`` -> NaN
(masked out of losses and metrics); blank -> 0. ``frontal_only=True`` keeps frontal views
(as the paper). Split: ``valid.csv`` is the test set (the paper's choice); validation is a
systematic sample of training patients (``val_fraction``), train the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.adapters._common import finish, sort_rows, systematic_split
from featx.datasets.csv_files import read_csv_file
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.registry import register_dataset

COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
VARIANTS = {"small": "CheXpert-v1.0-small", "full": "CheXpert-v1.0"}
POLICIES = ("u_zeros", "u_ones", "ignore")


def _locate(root: Path, variant: str) -> Path:
    if (root / "train.csv").exists() or (root / "valid.csv").exists():
        return root
    candidate = root / VARIANTS[variant]
    if (candidate / "train.csv").exists() or (candidate / "valid.csv").exists():
        return candidate
    raise DatasetError(f"{root}: no train.csv/valid.csv here nor in {VARIANTS[variant]}/ (variant={variant!r})")


def _resolve(root: Path, rel: str) -> Path:
    """CSV paths start with the dataset folder's own name; resolve them inside ``root``."""
    parts = Path(rel).parts
    if parts and parts[0].startswith("CheXpert"):
        parts = parts[1:]
    return root.joinpath(*parts)


@register_dataset("chexpert", "CheXpert: train.csv/valid.csv + JPEGs; 5 competition findings, uncertainty policy")
def index_chexpert(
    root: Path,
    *,
    uncertainty: str = "u_zeros",
    frontal_only: bool = True,
    variant: str = "small",
    val_fraction: float | None = None,
) -> SampleIndex:
    """Index CheXpert at ``root``."""
    if uncertainty not in POLICIES:
        raise DatasetError(f"uncertainty must be one of {POLICIES}, not {uncertainty!r}")
    if variant not in VARIANTS:
        raise DatasetError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
    root = _locate(root, variant)
    problems: list[Problem] = []
    rows, labels = [], []
    for csv_name, split in (("train.csv", "train"), ("valid.csv", "test")):
        csv_path = root / csv_name
        if not csv_path.exists():
            problems.append(Problem(str(csv_path), "not found; that part of the dataset is left out"))
            continue
        frame = read_csv_file(csv_path)
        missing = [c for c in ["Path", *COMPETITION] if c not in frame.columns]
        if missing:
            raise DatasetError(f"{csv_path}: missing columns {missing} (has {list(frame.columns)})")
        for line, record in zip(frame.index + 2, frame.to_dict("records"), strict=True):
            rel = record["Path"].strip()
            frontal = record.get("Frontal/Lateral", "").strip()
            is_frontal = frontal == "Frontal" if frontal else "frontal" in rel
            if frontal_only and not is_frontal:
                continue
            path = _resolve(root, rel)
            if not path.exists():
                problems.append(Problem(str(path), f"listed on line {line} of {csv_name} but not found"))
                continue
            vector, bad = _encode(record, uncertainty)
            if bad is not None:
                problems.append(Problem(str(path), f"line {line} of {csv_name}: column {bad[0]!r} has value {bad[1]!r}; "
                                                   "expected 1, 0, -1 or blank"))
                continue
            patient = next((p for p in Path(rel).parts if p.startswith("patient")), rel)
            sample_id = "/".join(Path(rel).parts[1:]) if rel.startswith("CheXpert") else rel
            rows.append({"sample_id": sample_id, "patient_id": patient, "split": split, "source": str(path),
                         "reader": "image"})
            labels.append(vector)
    if rows:
        rows, labels = sort_rows(rows, labels)
        table = pd.DataFrame(rows)
        overlap = set(table.loc[table["split"] == "train", "patient_id"]) & set(table.loc[table["split"] == "test", "patient_id"])
        if overlap:
            raise DatasetError(f"{root}: patient {sorted(overlap)[0]!r} is in both train.csv and valid.csv")
        train = (table["split"] == "train").to_numpy()
        table = systematic_split(table, "chexpert", val_fraction=val_fraction, test_fraction=None, rows=train, test=False)
        rows = table.to_dict("records")
    return finish(dataset="chexpert", task="multilabel", modality="xray", label_names=list(COMPETITION),
                  rows=rows, labels=labels, problems=problems, root=root)


def _encode(record: dict, policy: str) -> tuple[np.ndarray, tuple[str, str] | None]:
    vector = np.zeros(len(COMPETITION), dtype=np.float32)
    for j, name in enumerate(COMPETITION):
        raw = str(record.get(name, "")).strip()
        try:
            value = float(raw) if raw else 0.0
        except ValueError:
            return vector, (name, raw)
        if value == 1.0:
            vector[j] = 1.0
        elif value == 0.0:
            vector[j] = 0.0
        elif value == -1.0:
            vector[j] = {"u_zeros": 0.0, "u_ones": 1.0, "ignore": np.nan}[policy]
        else:
            return vector, (name, raw)
    return vector, None

"""Medical Segmentation Decathlon (Antonelli et al. 2022): any ``TaskXX_Name`` folder.

Expected folder (a task tarball unpacked, e.g. ``Task09_Spleen``)::

    ROOT/dataset.json      name, modality {"0": "CT"}, labels {"0": "background", "1": "spleen"},
                           training [{"image": "./imagesTr/spleen_2.nii.gz", "label": "./labelsTr/spleen_2.nii.gz"}],
                           test ["./imagesTs/spleen_1.nii.gz"]
    ROOT/imagesTr/*.nii.gz, ROOT/labelsTr/*.nii.gz, ROOT/imagesTs/*.nii.gz

ROOT may also be a folder of several tasks, with ``task="Task09_Spleen"`` (or "Spleen",
"09"). Only the labelled ``training`` cases are used (the test labels are not public);
macOS ``._*`` files are ignored. Volumes are reoriented to RAS+ and cut along
``slice_axis`` (default 2, axial); each slice keeps its label slice. One volume per patient.
Split: systematic sampling with the paper's proportions (Spleen 16/10/15, Hippocampus
120/60/80, Heart 12/4/4) or ``val_fraction`` / ``test_fraction``. Multi-channel (4D)
tasks (BrainTumour, Prostate) are quarantined: not supported yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from featx.datasets.adapters._common import (
    VolumeCase,
    check_slice_axis,
    finish,
    nifti_case_rows,
    sort_rows,
    strip_nifti,
    systematic_split,
)
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.registry import register_dataset

MODALITIES = {"ct": "ct", "mri": "mri", "mr": "mri", "t1": "mri", "t2": "mri", "flair": "mri", "xray": "xray"}


def read_dataset_json(path: Path) -> dict:
    """Parse an MSD/nnU-Net style dataset.json, with errors naming the file."""
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
    for key in ("labels", "training"):
        if key not in meta:
            raise DatasetError(f"{path}: dataset.json has no {key!r} entry (has {sorted(meta)})")
    return meta


def label_names_from(meta: dict, path: Path) -> list[str]:
    """Class names ordered by id, background first; ids must be 0..C-1."""
    labels = meta["labels"]
    try:
        items = sorted(((int(k), str(v)) for k, v in labels.items()), key=lambda kv: kv[0])
    except (AttributeError, ValueError) as exc:
        raise DatasetError(f"{path}: 'labels' must map integer ids to names ({exc})") from exc
    if [k for k, _ in items] != list(range(len(items))):
        raise DatasetError(f"{path}: label ids {[k for k, _ in items]} are not 0..{len(items) - 1}")
    return [name for _, name in items]


def modality_from(meta: dict) -> str:
    values = [str(v).strip().lower() for v in (meta.get("modality") or meta.get("channel_names") or {}).values()]
    first = values[0] if values else "other"
    if first in ("", "other", "noNorm".lower()):
        return "other"
    return MODALITIES.get(first, "xray" if first in ("x-ray", "cr", "dx") else "mri")


def _find_task(root: Path, task: str | None) -> Path:
    if (root / "dataset.json").exists():
        return root
    tasks = sorted(p for p in root.iterdir() if p.is_dir() and (p / "dataset.json").exists())
    if not tasks:
        raise DatasetError(f"{root}: no dataset.json here nor in a TaskXX_* sub-folder")
    if task is None:
        if len(tasks) == 1:
            return tasks[0]
        raise DatasetError(f"{root}: holds several tasks {[t.name for t in tasks]}; choose one with task=...")
    wanted = str(task).lower()
    for t in tasks:
        name = t.name.lower()
        if name == wanted or name.split("_", 1)[-1] == wanted or name.removeprefix("task").split("_")[0] == wanted.zfill(2):
            return t
    raise DatasetError(f"{root}: no task {task!r} among {[t.name for t in tasks]}")


def dataset_name(task_dir: Path, meta: dict) -> str:
    """'msd_spleen' from Task09_Spleen."""
    short = task_dir.name.split("_", 1)[-1] if task_dir.name.lower().startswith("task") else str(meta.get("name", task_dir.name))
    return "msd_" + short.lower().replace(" ", "_")


@register_dataset("msd", "Medical Segmentation Decathlon TaskXX_*: dataset.json + imagesTr/labelsTr NIfTI")
def index_msd(
    root: Path,
    *,
    task: str | None = None,
    slice_axis: int = 2,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> SampleIndex:
    """Index one MSD task at ``root``."""
    slice_axis = check_slice_axis(slice_axis)
    task_dir = _find_task(root, task)
    meta_path = task_dir / "dataset.json"
    meta = read_dataset_json(meta_path)
    names = label_names_from(meta, meta_path)
    name = dataset_name(task_dir, meta)
    problems: list[Problem] = []
    cases = []
    for entry in meta["training"]:
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            problems.append(Problem(str(meta_path), f"training entry {entry!r} lacks image/label"))
            continue
        image = (task_dir / entry["image"]).resolve()
        if image.name.startswith("._"):
            continue
        volume = strip_nifti(image.name)
        cases.append(VolumeCase(volume, image, (task_dir / entry["label"]).resolve(), volume))
    rows = nifti_case_rows(sorted(cases, key=lambda c: c.volume_id), slice_axis, problems)
    if rows:
        rows, _ = sort_rows(rows)
        table = systematic_split(pd.DataFrame(rows), name, val_fraction=val_fraction, test_fraction=test_fraction)
        rows = table.to_dict("records")
    return finish(dataset=name, task="segmentation", modality=modality_from(meta), label_names=names,
                  rows=rows, labels=[], problems=problems, root=task_dir)

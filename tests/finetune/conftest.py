"""Fixtures for the fine-tuning tests: planted-signal datasets on disk, in their native layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from featx.datasets import build_index
from tests.datasets.fixtures import write_nifti, write_png

TINY_VIT = {"depth": 2, "embed_dim": 32, "num_heads": 2}
SIZE = 28  # 2 x 2 patches of 14 px
# 5 blocks (the U-Net decoder's bottleneck + 4 skips) of 7 px patches: a 4 x 4 token grid at 28 px
SEG_VIT = {"depth": 5, "embed_dim": 32, "num_heads": 2, "patch_size": 7}


@pytest.fixture(autouse=True)
def one_thread():
    """One CPU thread: the tiny models run faster so on a shared 2-core machine, and bit-reproducibly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def planted_csv(root: Path, *, n_patients: int = 40, per_patient: int = 2, size: int = SIZE, drop_val: bool = False,
                multilabel: bool = False, seed: int = 0) -> Path:
    """PNGs in the generic CSV layout; positives carry a bright square in the top-left patch.

    Multi-label: finding ``a`` is the top-left square, finding ``b`` the bottom-right one.
    """
    rng = np.random.default_rng(seed)
    root = Path(root) / "planted"
    lines = ["path,patient_id,split," + ("a,b" if multilabel else "label")]
    half = size // 2
    for p in range(n_patients):
        split = "test" if p % 4 == 3 else ("train" if drop_val else "val") if p % 4 == 2 else "train"
        labels = rng.integers(0, 2, 2) if multilabel else np.array([(p // 4) % 2, 0])
        for i in range(per_patient):
            image = rng.normal(80, 20, (size, size))
            if labels[0]:
                image[2 : half - 2, 2 : half - 2] += 120
            if multilabel and labels[1]:
                image[half + 2 : -2, half + 2 : -2] += 120
            rel = f"images/p{p}_{i}.png"
            write_png(root / rel, np.clip(image, 0, 255).astype(np.uint8))
            tag = f"{labels[0]},{labels[1]}" if multilabel else ("pos" if labels[0] else "neg")
            lines.append(f"{rel},p{p},{split},{tag}")
    (root / "dataset.csv").write_text("\n".join(lines) + "\n")
    return root / "dataset.csv"


def planted_shapes_msd(root: Path, *, n_volumes: int = 10, size: int = 32, n_slices: int = 4, seed: int = 0) -> Path:
    """An MSD task folder whose label is a bright rectangle of random place and size per slice."""
    rng = np.random.default_rng(seed)
    task = Path(root) / "Task99_Shapes"
    training = []
    for v in range(n_volumes):
        image = rng.normal(-700, 40, (size, size, n_slices))
        label = np.zeros((size, size, n_slices), dtype=np.uint8)
        for z in range(n_slices):
            h, w = rng.integers(6, 14, 2)
            x, y = rng.integers(2, size - 16, 2)
            label[x : x + h, y : y + w, z] = 1
        image += (label > 0) * 800
        write_nifti(task / "imagesTr" / f"shapes_{v}.nii.gz", image.astype(np.int16))
        write_nifti(task / "labelsTr" / f"shapes_{v}.nii.gz", label)
        training.append({"image": f"./imagesTr/shapes_{v}.nii.gz", "label": f"./labelsTr/shapes_{v}.nii.gz"})
    meta = {"name": "Shapes", "tensorImageSize": "3D", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "shape"},
            "numTraining": n_volumes, "training": training, "test": []}
    (task / "dataset.json").write_text(json.dumps(meta))
    return task


@pytest.fixture
def planted_index(tmp_path):
    def make(**kwargs):
        return build_index("csv", planted_csv(tmp_path / "data", **kwargs))

    return make


@pytest.fixture
def shapes_index(tmp_path):
    return build_index("msd", planted_shapes_msd(tmp_path / "seg"))


def job_of(index, config, **options):
    """The FinetuneJob of a run on an index already built (``config``: its hyper-parameters)."""
    from dataclasses import asdict

    from featx.finetune.job import FinetuneJob

    renamed = {"n_boot": "bootstrap", "fingerprint_mode": "fingerprint", "model_name": "model"}
    options = {renamed.get(key, key): value for key, value in options.items()}
    root = Path(index.table["source"].iloc[0]).parent  # where the index came from (the job reads the index given)
    return FinetuneJob(dataset=index.dataset, root=root, **{**asdict(config), **options})


def fine_tune(index, **options):
    """``finetune_backbone`` on ``index`` with the job of ``options`` (``config`` and run options)."""
    from featx.finetune.runner import finetune_backbone

    return finetune_backbone(index, job_of(index, options.pop("config"), **options))


def scratch(index, **options):
    """``train_scratch`` on ``index`` with the job of ``options`` (``model_name``, ``config``, run options)."""
    from featx.finetune.runner import train_scratch

    return train_scratch(index, job_of(index, options.pop("config"), from_scratch=True, **options))

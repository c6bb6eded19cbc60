"""Tiny NIfTI volumes with planted 3D structures, indexed one row per volume (shared by the 3D tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.datasets.index import SampleIndex
from featx.datasets.volumes import VolumePrep

# tiny random encoders (seconds on 2 CPU cores)
TINY_SWIN = {"feature_size": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1], "window_size": 4}
TINY_SEGRES = {"init_filters": 4, "blocks_down": [1, 1, 1]}


def write_nifti(path: Path, data: np.ndarray, spacing: tuple[float, float, float]) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, np.diag([*spacing, 1.0])), str(path))
    return path


def planted_volumes(root: Path, n: int, *, shape=(30, 30, 30), spacing=(2.0, 2.0, 2.0), always=False,
                    seed: int = 0) -> SampleIndex:
    """``n`` CT-like volumes (HU: soft tissue ~40, noise) of which half (or all, ``always``) hold a bright sphere
    ("organ", HU 200) at a random place; a mask file per volume; split by patient 60/20/20."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    for i in range(n):
        present = always or i % 2 == 0
        volume = rng.normal(40, 15, shape).astype(np.float32)
        mask = np.zeros(shape, np.uint8)
        if present:
            centre = rng.uniform(8, np.array(shape) - 8)
            mask[np.linalg.norm(grid - centre, axis=-1) <= rng.uniform(4, 6)] = 1
            volume[mask == 1] += 160
        source = write_nifti(root / f"vol{i}.nii.gz", volume, spacing)
        mask_source = write_nifti(root / f"vol{i}_mask.nii.gz", mask, spacing)
        split = "train" if i % 5 < 3 else ("val" if i % 5 == 3 else "test")
        rows.append({"sample_id": f"v{i}", "patient_id": f"p{i}", "split": split, "source": str(source),
                     "reader": "nifti_volume", "volume_id": f"v{i}", "slice_index": -1, "slice_axis": -1,
                     "mask_source": str(mask_source) if always else "", "mask_reader": "nifti_volume" if always else ""})
        labels.append([0.0, 1.0] if present else [1.0, 0.0])
    if always:
        return SampleIndex("planted3d_seg", "segmentation", "ct", ["background", "organ"], pd.DataFrame(rows),
                           np.zeros((n, 0), np.float32))
    return SampleIndex("planted3d", "binary", "ct", ["absent", "present"], pd.DataFrame(rows),
                       np.asarray(labels, np.float32))


def tiny_prep(**kw) -> VolumePrep:
    """Soft-tissue window, 2 mm, a 32-voxel tile over a 64-voxel volume (8 tiles)."""
    base = {"tile": 32, "shape": (64, 64, 64), "spacing": (2.0, 2.0, 2.0), "windows": ((-100.0, 300.0),),
            "overlap": 0.5}
    return VolumePrep(**{**base, **kw})

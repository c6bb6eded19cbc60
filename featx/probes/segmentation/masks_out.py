"""``--save-masks``: predicted masks written beside the source images, in their geometry.

* 2D: one PNG of class ids per image (``<sample_id>.png``, uint8), resized back to the
  source image's size with nearest neighbour.
* 3D: one NIfTI per volume (``<volume_id>.nii.gz``, uint8) with the **source image's
  affine and shape**: the slices are reassembled in order, each resized back to the
  source's in-plane size, stacked along the canonical (RAS+) axis they were cut from,
  and reoriented from RAS+ back to the source's own voxel order, so the file overlays
  the source voxel for voxel.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from featx.datasets.readers import image_file_shape
from featx.evaluation.features import ProbeError
from featx.evaluation.segmentation import volume_order


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "unnamed"


def _resize(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    return np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def volume_to_source(slices: np.ndarray, source: str, slice_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Reassembled ``(n_slices, S, S)`` predictions -> (array in the source's voxel order, its affine)."""
    import nibabel as nib

    if not source.endswith((".nii", ".nii.gz")):
        raise ProbeError(f"{source}: --save-masks writes 3D masks for NIfTI sources only")
    img = nib.load(source)
    ornt = nib.orientations.io_orientation(img.affine)
    shape = img.shape[:3]
    canonical_shape = [0, 0, 0]
    for in_axis, (out_axis, _flip) in enumerate(ornt):
        canonical_shape[int(out_axis)] = int(shape[in_axis])
    plane = tuple(s for axis, s in enumerate(canonical_shape) if axis != slice_axis)
    if slices.shape[0] != canonical_shape[slice_axis]:
        raise ValueError(f"{source}: {slices.shape[0]} predicted slices, the volume has {canonical_shape[slice_axis]}")
    canonical = np.stack([_resize(s, plane) for s in slices], axis=slice_axis)
    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")), ornt)
    return np.ascontiguousarray(nib.orientations.apply_orientation(canonical, back)).astype(np.uint8), img.affine


def save_masks(data, positions: np.ndarray, predictions: np.ndarray, folder: Path) -> list[Path]:
    """Write the predictions of ``positions`` under ``folder``; returns the files written."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if data.is_3d:
        order = volume_order(data.volume_ids[positions], data.slice_index[positions], data.dataset)
        for volume, at in order.items():
            first = positions[at[0]]
            array, affine = volume_to_source(predictions[at], data.sources[first], int(data.slice_axis[first]))
            path = folder / f"{_safe(volume)}.nii.gz"
            image = nib.Nifti1Image(array, affine)
            image.set_qform(affine, code=1)
            image.set_sform(affine, code=1)
            nib.save(image, path)
            written.append(path)
    else:
        for i, p in enumerate(positions):
            shape = image_file_shape(str(data.sources[p]))
            path = folder / f"{_safe(Path(data.sample_ids[p]).with_suffix('').as_posix())}.png"
            Image.fromarray(_resize(predictions[i], shape)).save(path)
            written.append(path)
    return written

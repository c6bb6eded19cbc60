"""The volume pixel store: preprocessed volumes, once per (dataset, volume preprocessing), for every 3D backbone.

Beside the 2D pixel stores (``<cache>/<dataset>/_pixels``), a ``<key>.volumes`` Zarr v3 group holds
each volume as the encoders see it: ``images`` ``(N, C, D, H, W)`` float16 in [0, 1] (RAS, resampled,
windowed, cropped / padded; :func:`featx.datasets.volumes.prepare_volume`), ``masks`` ``(N, D, H, W)``
for segmentation, the sample ids, the input fingerprints and ``written`` / ``failed`` / ``error`` per
row. The key hashes the dataset and everything of :class:`~featx.datasets.volumes.VolumePrep` that
changes the pixels (not the tile size or overlap), so a second 3D backbone, or the same one at
another tiling, neither decodes nor resamples again. A row is written whole, then marked written: a
killed build resumes at the first unwritten row; the finished store is published by an atomic rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import zarr

from featx.cache.key import canonical_json
from featx.cache.pixels import pixel_dir
from featx.cache.store import StoreError, create_array
from featx.datasets.index import DatasetError, SampleIndex
from featx.datasets.volumes import VolumePrep, prepare_volume

SUFFIX = ".volumes"
PARTIAL = ".volumes.partial"
SCHEMA = 1


def volume_pixel_key(dataset: str, prep: VolumePrep) -> str:
    """Dataset + the pixel-changing preprocessing (tile and overlap excluded)."""
    pixels = {k: v for k, v in prep.key().items() if k not in ("tile", "overlap")}
    inputs = {"kind": "volume_pixels", "schema": SCHEMA, "dataset": dataset, "preprocessing": pixels}
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()[:16]


class VolumePixels:
    """One published (or building) volume pixel store."""

    def __init__(self, path: Path, group: zarr.Group) -> None:
        self.path = path
        self.group = group

    def read(self, row: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Row ``row``'s ``(C, D, H, W)`` float32 volume and mask (None without masks); a failed row raises
        :class:`DatasetError` with the reason it failed when it was built."""
        if self.group["failed"][row]:
            raise DatasetError(str(self.group["error"][row]))
        mask = np.asarray(self.group["masks"][row]) if "masks" in self.group else None
        return np.asarray(self.group["images"][row], dtype=np.float32), mask


def volume_pixels(index: SampleIndex, prep: VolumePrep, cache_root: str | Path, stamps: np.ndarray) -> VolumePixels:
    """The volume pixel store of ``index`` under ``prep``: opened if published for the same files, else built."""
    folder = pixel_dir(cache_root, index.dataset)
    key = volume_pixel_key(index.dataset, prep)
    published, partial = folder / f"{key}{SUFFIX}", folder / f"{key}{PARTIAL}"
    stamps = np.asarray(stamps).astype(str)
    ids = index.table["sample_id"].to_numpy().astype(str)
    if published.exists():
        group = zarr.open_group(str(published), mode="r", zarr_format=3)
        if _same_rows(group, ids, stamps):
            return VolumePixels(published, group)
        shutil.rmtree(published)  # the files changed since: build again
    group = _open_or_lay_out(partial, index, prep, ids, stamps)
    segmentation = "masks" in group
    written = np.asarray(group["written"][:])
    for row in np.flatnonzero(~written):
        sample = index.table.iloc[row]
        try:
            image, mask = prepare_volume(sample["source"], prep, sample["mask_source"] or None)
        except DatasetError as exc:
            group["failed"][row], group["error"][row] = True, str(exc)
        else:
            group["images"][row] = image.astype(np.float16)
            if segmentation:
                group["masks"][row] = mask if mask is not None else np.zeros(prep.shape, np.uint8)
        group["written"][row] = True
    os.replace(partial, published)
    return VolumePixels(published, zarr.open_group(str(published), mode="r", zarr_format=3))


def _same_rows(group: zarr.Group, ids: np.ndarray, stamps: np.ndarray) -> bool:
    stored = [[str(v) for v in group[name][:]] for name in ("sample_id", "stamp")]
    return stored == [ids.tolist(), stamps.tolist()]


def _open_or_lay_out(partial: Path, index: SampleIndex, prep: VolumePrep, ids: np.ndarray,
                     stamps: np.ndarray) -> zarr.Group:
    if partial.exists():
        try:
            group = zarr.open_group(str(partial), mode="r+", zarr_format=3)
            if _same_rows(group, ids, stamps) and "written" in group:
                return group
        except (FileNotFoundError, KeyError, ValueError):
            pass  # unreadable: a layout cut short, laid out again below
        shutil.rmtree(partial)  # half laid out, or left by a build over other files
    partial.parent.mkdir(parents=True, exist_ok=True)
    n = len(ids)
    try:
        group = zarr.open_group(str(partial), mode="w-", zarr_format=3)
    except FileExistsError:
        raise StoreError(f"{partial}: another build is writing this volume pixel store; wait for it") from None
    for name, values in (("sample_id", ids), ("stamp", stamps)):
        create_array(group, name, shape=(n,), chunks=(n,), dtype=str)[:] = values
    create_array(group, "images", shape=(n, prep.channels, *prep.shape), chunks=(1, prep.channels, *prep.shape),
                 dtype=np.float16, fill_value=0)
    if index.task == "segmentation":
        create_array(group, "masks", shape=(n, *prep.shape), chunks=(1, *prep.shape), dtype=np.uint8, fill_value=0)
    create_array(group, "failed", shape=(n,), chunks=(n,), dtype=bool, fill_value=False)
    create_array(group, "error", shape=(n,), chunks=(n,), dtype=str)
    # the mask of written rows last: a row marked written has its pixels on disk
    create_array(group, "written", shape=(n,), chunks=(n,), dtype=bool, fill_value=False)
    group.attrs["featx_volume_pixels"] = {"schema": SCHEMA, "dataset": index.dataset, "preprocessing": prep.key()}
    return group

"""Region-pooled features: the cached patch tokens (2D) or 3D feature maps inside each region of a mask.

Given a store with patch tokens / feature maps and, per row, a class-id mask at the store's mask
resolution (the dataset's masks stored with the features, or a user's ROI files read with
:func:`read_roi`), every region becomes one row: the weighted mean of the layer's tokens, each
token weighted by the fraction of its cell (the voxels it covers) inside the region. A region is
a class of the mask, or with ``components=True`` each connected component of a class (one lesion
each). Computed from the cache only: no backbone runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from featx.cache.store import FeatureStore, StoreError
from featx.evaluation.features import ProbeData


@dataclass
class RegionRows:
    """One row per region: ``table`` (region_id, sample_id, patient_id, split, label, cells, store_row) and
    ``features`` ``(n_regions, D)`` of ``layer``."""

    table: pd.DataFrame
    features: np.ndarray
    layer: str
    provenance: dict

    def to_probe_data(self, label_names: list[str] | None = None) -> ProbeData:
        """The regions as probe units (multi-class on ``label``), grouped by patient as every probe is."""
        names = label_names or sorted(self.table["label"].unique().tolist())
        codes = np.array([names.index(label) for label in self.table["label"]])
        return ProbeData.from_arrays(
            {f"cls/{self.layer}": self.features, f"pooled/{self.layer}": self.features},
            np.eye(len(names), dtype=np.float32)[codes], self.table["patient_id"].to_numpy(),
            self.table["split"].to_numpy(), task="multiclass", label_names=names,
            ids=self.table["region_id"].to_numpy(), level="region", dataset=self.provenance.get("dataset", ""),
            provenance=dict(self.provenance),
        )


def cell_weights(region: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """Per token of ``grid``, the fraction of its cell of ``region`` (a boolean mask) that is inside."""
    factors = [n // g for n, g in zip(region.shape, grid)]
    if any(n % g for n, g in zip(region.shape, grid)):
        raise StoreError(f"mask shape {list(region.shape)} is not a whole multiple of the token grid {list(grid)}")
    split = [x for g, f in zip(grid, factors) for x in (g, f)]
    return region.reshape(split).mean(axis=tuple(range(1, 2 * len(grid), 2)))


def read_roi(path: str | Path, store: FeatureStore) -> np.ndarray:
    """A user's ROI mask file at the store's mask resolution: NIfTI for volume rows (through the store's own
    orientation, spacing and crop/pad), PNG (or any image) for 2D rows (resized, nearest, to the image size)."""
    path = Path(path)
    if store.preprocessing.get("level") == "volume":
        from featx.datasets.volumes import crop_pad, read_canonical, resample

        prep = store.preprocessing
        mask, spacing = read_canonical(path)
        target = tuple(prep["spacing"]) if prep.get("spacing") else None
        return crop_pad(resample(np.rint(mask), spacing, target, nearest=True), tuple(prep["shape"])).astype(np.uint8)
    from PIL import Image

    size = int(store.preprocessing.get("size") or store.attrs.get("mask_size"))
    try:
        image = Image.open(path).convert("L").resize((size, size), Image.NEAREST)
    except OSError as exc:
        raise StoreError(f"ROI mask {path} cannot be read as an image ({exc})") from None
    return np.asarray(image, dtype=np.uint8)


def region_features(store: FeatureStore, layer: str, *, masks: Mapping[int, np.ndarray] | None = None,
                    labels: Mapping[int, str] | None = None, components: bool = False) -> RegionRows:
    """One row per region of each row's mask: the region-weighted mean of ``layer``'s stored tokens.

    ``masks`` maps store rows to class-id masks (default: every valid row's stored mask); ``labels``
    names the classes (default: the store's class names). Class 0 is background.
    """
    grid = store.patch_grid.get(layer)
    if grid is None:
        raise StoreError(f"{store.path}: layer {layer!r} has no stored patch tokens / feature maps "
                         f"(layers with them: {sorted(store.patch_grid)})")
    if masks is None:
        rows = np.flatnonzero(store.valid)
        masks = dict(zip(rows.tolist(), store.read_masks(rows)))
    names = dict(labels) if labels is not None else dict(enumerate(store.label_names))
    index = store.index
    out_rows, features = [], []
    for row, mask in masks.items():
        tokens = store.read_patch(layer, np.array([row]))[0].astype(np.float64)
        for class_id, region_id, region in _regions(np.asarray(mask), components):
            weights = cell_weights(region, grid)
            if weights.sum() == 0:
                continue
            features.append(np.tensordot(weights, tokens, axes=weights.ndim) / weights.sum())
            sample = index.iloc[row]
            out_rows.append({"region_id": f"{sample['sample_id']}:{region_id}", "sample_id": sample["sample_id"],
                             "patient_id": sample["patient_id"], "split": sample["split"],
                             "label": names.get(class_id, str(class_id)), "cells": float(weights.sum()),
                             "store_row": int(row)})
    if not out_rows:
        raise StoreError(f"{store.path}: the masks given hold no foreground region")
    return RegionRows(pd.DataFrame(out_rows), np.stack(features).astype(np.float32), layer, store.provenance())


def _regions(mask: np.ndarray, components: bool):
    """``(class_id, region_id, boolean mask)`` per class present (or per connected component of each class)."""
    for class_id in np.unique(mask):
        if class_id == 0:
            continue
        region = mask == class_id
        if not components:
            yield int(class_id), str(int(class_id)), region
            continue
        from scipy.ndimage import label

        parts, n = label(region)
        for k in range(1, n + 1):
            yield int(class_id), f"{int(class_id)}.{k}", parts == k

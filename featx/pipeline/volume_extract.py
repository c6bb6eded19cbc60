"""Volume rows: a 3D encoder over whole volumes -> one feature-store row per volume.

For every volume: its preprocessed pixels (RAS, spacing, HU windows or MRI clip, crop/pad to the fixed
shape) from the volume pixel store (:mod:`featx.cache.volume_pixels`, built on first use and shared
by every 3D backbone), then the encoder over overlapping tiles on the stride grid
(:func:`featx.datasets.volumes.tile_grid`), each stage's tile maps merged into one map of the whole
volume (:func:`featx.datasets.volumes.merge_tiles`, every voxel counted once), and per stage

* ``cls`` = ``pooled`` = the merged map's mean (one vector per volume, what the probes read);
* with ``feature_maps``, the merged ``(d, h, w, F)`` map itself (``features/<stage>/patch``), for
  3D decoders and region pooling.

Segmentation datasets also store the preprocessed mask (``masks``, ``(n, *shape)``). Rows are the
index's rows (one per volume: ``volume_id`` set, ``slice_index`` -1), so ``load_probe_data``
reads them at the volume level as they are. The same tiling and merging serve every 3D backbone.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from featx.backbones.base import LoadedBackbone
from featx.backbones.device import resolve_device
from featx.backbones.request import BackboneRequest
from featx.cache.key import cache_key
from featx.cache.store import PARTIAL_SUFFIX, PUBLISHED_SUFFIX, FeatureStore, StoreError, store_dir
from featx.cache.volume_pixels import volume_pixels
from featx.datasets.index import DatasetError, SampleIndex
from featx.datasets.stamps import row_stamps
from featx.datasets.volumes import VolumePrep, merge_tiles, tile_grid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VolumeRun:
    """What one volume extraction did: the published store and its timings."""

    store: FeatureStore
    n_volumes: int
    n_tiles: int
    seconds: float
    forward_seconds: float

    @property
    def volumes_per_second(self) -> float:
        return self.n_volumes / self.seconds if self.seconds > 0 else 0.0


def stage_strides(backbone: LoadedBackbone, prep: VolumePrep, device: torch.device) -> dict[str, int]:
    """Each stored stage's stride in voxels, from one dry forward of one zero tile."""
    x = torch.zeros(1, prep.channels, prep.tile, prep.tile, prep.tile, device=device)
    outputs = backbone.model(x)
    return {layer: prep.tile // int(out["patch"].shape[1]) for layer, out in outputs.items()}


def check_index(index: SampleIndex) -> None:
    """Volume rows: one row per volume (``volume_id`` set, no slice)."""
    table = index.table
    if (table["volume_id"] == "").any() or (table["slice_index"] != -1).any() or table["volume_id"].duplicated().any():
        raise DatasetError(
            f"{index.dataset}: volume rows need one row per volume (a unique volume_id, slice_index -1); "
            "index the dataset by volume, not by slice"
        )


def volume_key(index: SampleIndex, backbone: LoadedBackbone, prep: VolumePrep, feature_maps: bool) -> tuple[str, dict]:
    """The cache key: dataset, backbone config, weights, and the volume preprocessing (spacing, windows, tiles)."""
    return cache_key(dataset=index.dataset, backbone={**backbone.config, "feature_maps": bool(feature_maps)},
                     weights_hash=backbone.weights_hash, preprocessing=prep.key())


def extract_volumes(index: SampleIndex, request: BackboneRequest, prep: VolumePrep, cache_root: str | Path, *,
                    feature_maps: bool = False, block_rows: int = 8, batch: int = 4, device: str = "cpu") -> VolumeRun:
    """Extract (or reuse) the volume-row store of ``index`` under ``cache_root``; resumes a killed run."""
    check_index(index)
    start = time.perf_counter()
    overrides = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in request.model_overrides)  # hashable
    backbone = replace(request, img_size=prep.tile, patch_tokens=True, model_overrides=overrides).load()
    torch_device = resolve_device(device)
    backbone.model.to(torch_device)
    strides = stage_strides(backbone, prep, torch_device)
    key, inputs = volume_key(index, backbone, prep, feature_maps)
    folder = store_dir(cache_root, index.dataset, backbone.spec.name)
    published = folder / f"{key}{PUBLISHED_SUFFIX}"
    if published.exists():
        store = FeatureStore.open(published)
        return VolumeRun(store, 0, 0, time.perf_counter() - start, 0.0)
    stamps = row_stamps(index.table)
    pixels = volume_pixels(index, prep, cache_root, stamps)
    store = _open_or_create(folder / f"{key}{PARTIAL_SUFFIX}", key, inputs, index, stamps, backbone, prep, strides,
                            feature_maps, block_rows)
    starts = tile_grid(prep.shape, prep.tile, prep.overlap, max(strides.values()))
    n_volumes = n_tiles = 0
    forward = 0.0
    for block in store.pending_blocks():
        rows = range(*store.block_slice(block).indices(store.n_rows))
        features = {layer: {"cls": [], "pooled": [], "patch": []} for layer in backbone.layer_names}
        failed, errors, masks = [], [], []
        for row in rows:
            try:
                image, mask = pixels.read(row)
            except DatasetError as exc:
                image, mask = None, None
                errors.append(str(exc))
            else:
                errors.append("")
            failed.append(image is None)
            masks.append(mask if mask is not None else np.zeros(prep.shape, np.uint8))
            merged, seconds = _encode(backbone, image, starts, prep, strides, batch, torch_device)
            forward += seconds
            n_tiles += len(starts) if image is not None else 0
            for layer, fmap in merged.items():
                features[layer]["cls"].append(fmap.mean(axis=(0, 1, 2)))
                features[layer]["pooled"].append(fmap.mean(axis=(0, 1, 2)))
                features[layer]["patch"].append(fmap)
        stacked = {layer: {kind: np.stack(values) for kind, values in kinds.items() if kind != "patch" or feature_maps}
                   for layer, kinds in features.items()}
        store.write_block(block, stacked, np.asarray(failed), errors,
                          masks=np.stack(masks) if index.task == "segmentation" else None)
        n_volumes += len(rows)
    store.publish()
    return VolumeRun(FeatureStore.open(published), n_volumes, n_tiles, time.perf_counter() - start, forward)


def _encode(backbone: LoadedBackbone, image: np.ndarray | None, starts: list[tuple[int, int, int]], prep: VolumePrep,
            strides: dict[str, int], batch: int, device: torch.device) -> tuple[dict[str, np.ndarray], float]:
    """Every stage's merged ``(d, h, w, F)`` map of one volume (zeros for an unreadable one), and forward seconds."""
    if image is None:
        return {layer: np.zeros((*(n // strides[layer] for n in prep.shape), backbone.feature_dims[layer]), np.float32)
                for layer in backbone.layer_names}, 0.0
    tiles: dict[str, list[np.ndarray]] = {layer: [] for layer in backbone.layer_names}
    t = prep.tile
    seconds = 0.0
    for first in range(0, len(starts), batch):
        chunk = starts[first:first + batch]
        x = torch.from_numpy(np.stack([image[:, z:z + t, y:y + t, x:x + t] for z, y, x in chunk])).to(device)
        began = time.perf_counter()
        outputs = backbone.model(x)
        for layer, out in outputs.items():
            tiles[layer].extend(out["patch"].float().cpu().numpy())
        seconds += time.perf_counter() - began
    return {layer: merge_tiles(maps, starts, prep.shape, strides[layer]) for layer, maps in tiles.items()}, seconds


def _open_or_create(partial: Path, key: str, inputs: dict, index: SampleIndex, stamps: np.ndarray,
                    backbone: LoadedBackbone, prep: VolumePrep, strides: dict[str, int], feature_maps: bool,
                    block_rows: int) -> FeatureStore:
    if partial.exists():
        try:
            store = FeatureStore.open(partial, writable=True, allow_partial=True)
        except StoreError as exc:
            log.warning("%s: laid out only in part (%s); laying it out again", partial, exc)
        else:
            if store.key == key and store.matches_index(index, stamps):
                return store
        shutil.rmtree(partial)
    grid = {layer: tuple(n // stride for n in prep.shape) for layer, stride in strides.items()}
    return FeatureStore.create(
        partial, key=key, key_inputs=inputs, index=index, stamps=stamps, feature_dims=backbone.feature_dims,
        block_rows=block_rows, patch_grid=grid if feature_maps else None,
        mask_size=prep.shape if index.task == "segmentation" else None,
        provenance={
            "backbone": {
                "name": backbone.spec.name, "family": backbone.spec.family, "config": backbone.config,
                "weights_hash": backbone.weights_hash, "weights_source": backbone.weights_source,
                "random_init": backbone.random_init, "img_size": backbone.img_size,
                "mean": list(backbone.spec.mean), "std": list(backbone.spec.std),
            },
            "preprocessing": prep.key(),
            "level": "volume",
            "strides": strides,
            "problems": [str(p) for p in index.problems],
        },
    )

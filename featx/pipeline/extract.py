"""Extraction: run a frozen backbone once over every sample into a feature store.

reader (DataLoader workers: decode + preprocess, pinned memory) -> mapper (backbone
forward on the device, autocast bf16 on GPU) -> writer (background thread, whole
blocks). Resumes an interrupted run from its unwritten blocks and publishes the
store atomically when every block is in.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from featx.backbones import LoadedBackbone
from featx.backbones.device import resolve_device
from featx.cache.key import cache_key
from featx.cache.lineage import check_continues
from featx.cache.lock import exclusive_lock
from featx.cache.pixels import PixelStore
from featx.cache.space import full_disk_explained
from featx.cache.store import PARTIAL_SUFFIX, PUBLISHED_SUFFIX, FeatureStore, StoreError, store_dir
from featx.cache.versions import Versions
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig
from featx.datasets.stamps import row_stamps
from featx.pipeline.mapper import DeviceMapper
from featx.pipeline.pace import measure_rows_per_second, paced_block_rows
from featx.pipeline.pixel_feed import PixelCache, PixelFeed
from featx.pipeline.reader import BlockBatchSampler, SampleDataset
from featx.pipeline.timing import StageTimes
from featx.pipeline.writer import Batch, BlockWriter

PATCH_SHARD_BYTES = 128 * 2**20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SteadyRate:
    """Rows of every batch but the first, and the seconds from the second batch's submission."""

    rows: int
    seconds: float
    times: StageTimes = field(default_factory=StageTimes)  # where the extracting thread's time went
    forward_rows: int = 0  # every row the backbone ran on, the warm-up batch and recomputed unchanged rows included

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ExtractResult:
    """Where the store is, under which key, and how the run went."""

    path: Path
    key: str
    n_rows: int
    n_failed: int
    failures: pd.DataFrame
    reused: bool  # the published store already held exactly these samples: nothing was run
    rows_extracted: int
    rows_reused: int  # copied from the previous store of this key (unchanged samples)
    seconds: float
    steady: SteadyRate  # while batches flow (zero when blocks were computed elsewhere)
    pixel_store: Path | None = None  # the pixel store the rows were read from (None: raw files)

    @property
    def rows_per_second(self) -> float:
        """End to end: model to device, worker start-up, store layout and publishing included."""
        return self.rows_extracted / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_rows_per_second(self) -> float:
        """While batches flow: the rate a long extraction runs at."""
        return self.steady.rows_per_second


def patch_grids(backbone: LoadedBackbone, device: str) -> dict[str, tuple[int, int]] | None:
    """Each layer's patch-token grid, from one dry forward of one image; None without patch tokens."""
    if not backbone.config.get("patch_tokens"):
        return None
    model = backbone.model.to(resolve_device(device))
    x = torch.zeros(1, 3, backbone.img_size, backbone.img_size, device=resolve_device(device))
    with torch.inference_mode():
        outputs = model(x)
    return {layer: (int(k["patch"].shape[1]), int(k["patch"].shape[2])) for layer, k in outputs.items()}


def choose_block_rows(grid: dict[str, tuple[int, int]] | None, feature_dims: dict[str, int], batch_size: int) -> int:
    """Rows per block: ~1024 for pooled features; patch-token shards kept near 128 MiB."""
    if grid is None:
        return 1024
    per_row = sum(2 * h * w * feature_dims[layer] for layer, (h, w) in grid.items())
    rows = max(1, min(1024, PATCH_SHARD_BYTES // max(per_row, 1)))
    if rows >= batch_size:
        rows -= rows % batch_size
    return int(rows)


def _open_or_create(
    partial: Path,
    key: str,
    key_inputs: dict,
    index: SampleIndex,
    stamps: np.ndarray,
    backbone: LoadedBackbone,
    preprocess: PreprocessConfig,
    grid: dict[str, tuple[int, int]] | None,
    block_rows: int,
    source_root: str | None,
    patch_format: str = "float16",
) -> FeatureStore:
    if partial.exists():
        try:
            store = FeatureStore.open(partial, writable=True, allow_partial=True)
        except StoreError as exc:  # killed (or out of space) while it was laid out
            log.warning("%s: laid out only in part (%s); laying it out again", partial, exc)
        else:
            if store.key == key and store.matches_index(index, stamps):
                return store
        shutil.rmtree(partial)  # half laid out, or left by a run over other samples: start again
    return FeatureStore.create(
        partial,
        key=key,
        key_inputs=key_inputs,
        index=index,
        stamps=stamps,
        feature_dims=backbone.feature_dims,
        block_rows=block_rows,
        patch_grid=grid,
        mask_size=preprocess.size if index.task == "segmentation" else None,
        patch_format=patch_format,
        provenance={
            "backbone": {
                "name": backbone.spec.name,
                "family": backbone.spec.family,
                "config": backbone.config,
                "weights_hash": backbone.weights_hash,
                "weights_source": backbone.weights_source,
                "random_init": backbone.random_init,
                "img_size": backbone.img_size,
                "mean": list(backbone.spec.mean),
                "std": list(backbone.spec.std),
            },
            "preprocessing": preprocess.to_dict(),
            "problems": [str(p) for p in index.problems],
            "source_root": source_root,
        },
    )


def patch_layout(patch_format: str = "float16", patch_blocks: int | None = None) -> dict:
    """What the patch-token layout adds to the key (nothing for the default: every block, float16)."""
    layout = {"patch_format": patch_format} if patch_format != "float16" else {}
    return layout | ({"patch_blocks": int(patch_blocks)} if patch_blocks is not None else {})


def store_key(
    index: SampleIndex, backbone: LoadedBackbone, preprocess: PreprocessConfig, patch: dict | None = None
) -> tuple[str, dict]:
    """The cache key of (dataset, backbone config and patch-token layout, weights, preprocessing)."""
    return cache_key(
        dataset=index.dataset,
        backbone={**backbone.config, **(patch or {})},
        weights_hash=backbone.weights_hash,
        preprocessing=preprocess.to_dict(),
    )


@dataclass(frozen=True)
class Reuse:
    """Rows to copy from the previous published store of the same key instead of recomputing."""

    previous: Path
    rows: np.ndarray  # per row of the new store: the previous store's row, or -1

    @property
    def copied(self) -> np.ndarray:
        return self.rows >= 0


BlockRunner = Callable[[FeatureStore, list[int], "Reuse | None"], None]


def extract(
    index: SampleIndex,
    backbone: LoadedBackbone,
    preprocess: PreprocessConfig,
    cache_root: str | Path,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    num_workers: int = 2,
    block_rows: int | None = None,
    progress: bool = True,
    runner: BlockRunner | None = None,
    source_root: str | Path | None = None,
    replace: bool = False,
    fingerprint: str = "stat",
    pixel_cache: PixelCache | None = None,
    patch_format: str = "float16",
    patch_blocks: int | None = None,
) -> ExtractResult:
    """Extract ``index`` with ``backbone`` into the cache; reuse or resume where possible.

    Patch tokens are stored when the backbone was loaded to return them. ``runner``
    computes the pending blocks of the partial store (default: here, in this
    process; see featx.pipeline.dask_extract for a Dask cluster). ``source_root`` (what
    ``--root`` named) is recorded in the store; a rebuild from another source, or one
    dropping most of the stored samples, is refused unless ``replace``
    (featx.cache.lineage). ``fingerprint`` says how unchanged inputs are told from
    edited ones: ``stat`` (size and mtime) or ``content`` (a hash of the bytes).
    With ``pixel_cache``
    the rows are read from the dataset's pixel store (built or reused first) instead of
    decoding raw files.
    ``patch_blocks``: only the
    last n stored layers carry patch tokens; ``patch_format``: ``float16`` or ``int8``
    (per-token scale); both enter the cache key when not the default.
    """
    if preprocess.size != backbone.img_size:
        raise ValueError(f"preprocessing size {preprocess.size} differs from backbone size {backbone.img_size}")
    key, key_inputs = store_key(index, backbone, preprocess, patch_layout(patch_format, patch_blocks))
    folder = store_dir(cache_root, index.dataset, backbone.spec.name)
    final = folder / f"{key}{PUBLISHED_SUFFIX}"
    partial = folder / f"{key}{PARTIAL_SUFFIX}"
    started = time.perf_counter()
    stamps = row_stamps(index.table, fingerprint)
    source_root = str(Path(source_root).expanduser().resolve()) if source_root is not None else None
    reuse = None
    with full_disk_explained(folder), exclusive_lock(folder / f"{key}.lock"):
        Versions.of(final).recover()  # a run killed between publishing a version and pointing at it
        if final.exists():
            published = FeatureStore.open(final)
            if published.matches_index(index, stamps):
                failures = published.failures()
                return ExtractResult(
                    path=final, key=key, n_rows=published.n_rows, n_failed=len(failures), failures=failures,
                    reused=True, rows_extracted=0, rows_reused=0, seconds=0.0, steady=SteadyRate(0, 0.0),
                )
            check_continues(published, index, source_root, replace=replace)
            reuse = Reuse(published.path, published.reusable_rows(index, stamps))  # the dataset grew or changed
        grid = patch_grids(backbone, device)
        if grid is not None and patch_blocks is not None:
            if not 1 <= patch_blocks <= len(grid):
                raise ValueError(f"--patch-blocks {patch_blocks}: the backbone stores {len(grid)} blocks (--n-last)")
            grid = dict(list(grid.items())[-patch_blocks:])
        rows = block_rows or choose_block_rows(grid, backbone.feature_dims, batch_size)
        if block_rows is None and runner is None and not partial.exists():
            rows = paced_block_rows(rows, measure_rows_per_second(backbone, resolve_device(device)), batch_size)
        store = _open_or_create(
            partial, key, key_inputs, index, stamps, backbone, preprocess, grid, rows, source_root, patch_format
        )
        pending = store.pending_blocks()
        todo = np.zeros(len(index), dtype=bool)
        for block in pending:
            todo[store.block_slice(block)] = True
        n_reused = int((todo & reuse.copied).sum()) if reuse else 0
        n_todo = int(todo.sum()) - n_reused
        steady = SteadyRate(0, 0.0)
        pixels = pixel_cache.store_for(index, preprocess) if pixel_cache is not None and n_todo else None
        if runner is None:
            steady = run_blocks(
                store, index, backbone, preprocess, pending, device, batch_size, num_workers, progress, reuse, pixels
            )
        else:
            runner(store, pending, reuse)
        path = store.publish()
    published = FeatureStore.open(path)
    failures = published.failures()
    return ExtractResult(
        path=path, key=key, n_rows=published.n_rows, n_failed=len(failures), failures=failures, reused=False,
        rows_extracted=n_todo, rows_reused=n_reused, seconds=time.perf_counter() - started, steady=steady,
        pixel_store=pixels.path if pixels is not None else None,
    )


def copy_reused_rows(writer: BlockWriter, store: FeatureStore, blocks: list[int], reuse: Reuse) -> None:
    """Hand the writer each block's rows that the previous store already holds."""
    previous = FeatureStore.open(reuse.previous)
    for block in blocks:
        rows = np.arange(store.block_slice(block).start, store.block_slice(block).stop)
        rows = rows[reuse.copied[rows]]
        if len(rows):
            features, masks = previous.read_rows(reuse.rows[rows])
            writer.put(Batch(rows, features, [""] * len(rows), masks))


def saved_postfix(saved: int, total: int, failed: int) -> str:
    """The progress bar's note on what an interrupt would keep: rows written to the store so far."""
    return f"saved {saved}/{total} rows" + (f", {failed} failed" if failed else "")


def without_copied(
    rows: np.ndarray, features: dict, errors: list[str], masks: np.ndarray | None, reuse: Reuse
) -> tuple[np.ndarray, dict, list[str], np.ndarray | None]:
    """A computed batch less the rows the previous store supplies."""
    keep = ~reuse.copied[rows]
    features = {layer: {kind: values[keep] for kind, values in kinds.items()} for layer, kinds in features.items()}
    errors = [error for error, kept in zip(errors, keep) if kept]
    return rows[keep], features, errors, masks[keep] if masks is not None else None


def run_blocks(
    store: FeatureStore,
    index: SampleIndex,
    backbone: LoadedBackbone,
    preprocess: PreprocessConfig,
    blocks: list[int],
    device: str,
    batch_size: int,
    num_workers: int,
    progress: bool,
    reuse: Reuse | None = None,
    pixels: PixelStore | None = None,
) -> SteadyRate:
    """Compute and write the given blocks of a writable store (the unit a worker owns).

    Rows that ``reuse`` maps to the previous store are copied from it, the rest are
    computed. Returns the steady-state rate: the rows of every batch but the first,
    over the time from the second batch's submission to the last block written (model
    loading, worker start-up and most of the first, warm-up forward are left out, as
    a forward-only benchmark leaves out its warm-up), and where the time went. With
    ``pixels`` the inputs come from that pixel store instead of the raw files.
    """
    if not blocks:
        return SteadyRate(0, 0.0)
    torch_device = resolve_device(device)
    with_masks = index.task == "segmentation"
    sampler = BlockBatchSampler(blocks, store.block_rows, len(index), batch_size, reuse.copied if reuse else None)
    times = StageTimes()
    loader = (
        PixelFeed(pixels, sampler, torch_device, with_masks=with_masks, times=times) if pixels is not None
        else DataLoader(
            SampleDataset(index.table, preprocess, with_masks),
            batch_sampler=sampler,
            num_workers=num_workers,
            pin_memory=torch_device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if num_workers > 0 else None,
        )
    )
    mapper = DeviceMapper(backbone, torch_device)
    batches = list(loader.batch_sampler)
    n_rows = sum(len(batch) - (int(reuse.copied[batch].sum()) if reuse else 0) for batch in batches)
    writer = BlockWriter(store)
    if reuse is not None:
        copy_reused_rows(writer, store, blocks, reuse)
    failed = 0
    timed_from: float | None = None
    rows_timed = 0
    saved_before = int(store.written.sum())
    bar = tqdm(total=n_rows, unit="rows", desc=f"extract {backbone.spec.name}", disable=not progress, smoothing=0.1)

    def hand_over(landed: Iterator[tuple[dict, tuple]]) -> None:
        nonlocal failed
        with times.clock("compute"):
            landed = list(landed)  # the forward (or the wait for the device) happens here
        for features, (rows, errors, masks) in landed:
            if reuse is not None:  # rows computed only to keep a fresh run's batches: copied instead
                rows, features, errors, masks = without_copied(rows, features, errors, masks, reuse)
            with times.clock("write"):
                writer.put(Batch(rows, features, errors, masks))
            failed += sum(1 for e in errors if e)
            bar.update(len(errors))
            bar.set_postfix_str(saved_postfix(saved_before + writer.rows_written, store.n_rows, failed), refresh=False)

    try:
        for number, batch in enumerate(times.timed_reads(loader)):
            if number == 1:
                timed_from = time.perf_counter()
            if number >= 1:
                rows_timed += len(batch["row"])
            masks = batch["mask"].numpy() if with_masks else None
            payload = (batch["row"].numpy(), list(batch["error"]), masks)
            hand_over(mapper.submit(batch["pixels"], payload))
        hand_over(mapper.flush())
    finally:
        try:
            with times.clock("write"):
                writer.close()
            bar.set_postfix_str(saved_postfix(saved_before + writer.rows_written, store.n_rows, failed), refresh=False)
        finally:
            bar.close()
    seconds = time.perf_counter() - timed_from if timed_from is not None else 0.0
    return SteadyRate(rows_timed, seconds, times, forward_rows=sum(len(batch) for batch in batches))

"""Extraction spread over a Dask cluster: workers (GPUs, nodes) each own whole blocks.

The coordinator lays out the partial store, hands each task a disjoint list of
blocks, and publishes once all are written. Workers load the backbone themselves
from a :class:`BackboneRequest` (a model is never shipped over the network) and
write straight into the shared store; since no two tasks share a block, no two
writers share a chunk or shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featx.backbones.request import BackboneRequest
from featx.cache.pixels import PixelStore
from featx.cache.store import FeatureStore
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.extract import BlockRunner, Reuse, run_blocks
from featx.pipeline.pixel_feed import PixelCache


def _run_task(
    store_path: str,
    blocks: list[int],
    index: SampleIndex,
    request: BackboneRequest,
    preprocess: PreprocessConfig,
    device: str,
    batch_size: int,
    num_workers: int,
    reuse: Reuse | None,
    pixels_path: str | None = None,
) -> list[int]:
    store = FeatureStore.open(Path(store_path), writable=True, allow_partial=True)
    pixels = PixelStore.open(pixels_path) if pixels_path else None
    run_blocks(store, index, request.load(), preprocess, blocks, device, batch_size, num_workers, False, reuse, pixels)
    return blocks


def dask_runner(
    client: Any,
    index: SampleIndex,
    request: BackboneRequest,
    preprocess: PreprocessConfig,
    *,
    device: str = "cpu",
    batch_size: int = 64,
    num_workers: int = 0,
    blocks_per_task: int = 4,
    pixel_cache: PixelCache | None = None,
) -> BlockRunner:
    """A block runner for ``extract(..., runner=...)`` that spreads blocks over ``client``'s workers.

    With ``pixel_cache`` the workers read the pixel store (on storage they share) instead of raw files.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    def run(store: FeatureStore, blocks: list[int], reuse: Reuse | None) -> None:
        if not blocks:
            return
        groups = [blocks[i : i + blocks_per_task] for i in range(0, len(blocks), blocks_per_task)]
        pixels = str(pixel_cache.store_for(index, preprocess).path) if pixel_cache is not None else None
        index_future, reuse_future = client.scatter([index, reuse], broadcast=True)
        futures = [
            client.submit(
                _run_task, str(store.path), group, index_future, request, preprocess, device, batch_size, num_workers,
                reuse_future, pixels, pure=False,
            )
            for group in groups
        ]
        with tqdm(total=len(blocks), unit="blocks", desc=f"extract {request.name} (dask)") as bar:
            for future in as_completed(futures):
                bar.update(len(future.result()))

    return run

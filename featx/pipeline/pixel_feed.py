"""Feeding a backbone from the pixel store: large contiguous reads, pinned buffers, prefetch.

A background thread reads spans of whole batches from the pixel store (one slice
read per span, i.e. whole shards), copies each batch into a pinned host buffer taken
from a small ring, and queues it; the extracting thread only issues the non-blocking
host-to-device copy, replicates grey to 3 channels (a store holding colour images
feeds all 3 channels of every row) and resizes on the device where the store's size
differs. Batches are the same as the raw-file path's (the same
:class:`BlockBatchSampler`), so features come out identical.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from featx.cache.pixels import PixelStore, pixel_key
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.pixel_build import PixelBuildResult, build_pixel_store
from featx.pipeline.reader import BlockBatchSampler
from featx.pipeline.timing import StageTimes

READ_ROWS = 1024  # rows per contiguous pixel-store read (whole batches)


def device_batch(images: torch.Tensor, device: torch.device, size: int | None = None, bits: int = 8) -> torch.Tensor:
    """``(B, S, S)`` grey or ``(B, 3, S, S)`` colour uint8 (or, ``bits=16``, int16-viewed uint16) pixels ->
    ``(B, 3, size, size)`` in 0..255 units.

    uint8 at the store's own size stays uint8 (exactly what the raw-file path hands the
    backbone); otherwise a float32 tensor (uint16 rescaled to 0..255, bilinear resize
    with antialiasing). Grey is replicated to 3 channels. The backbone's mean/std is
    applied by its mapper.
    """
    x = images.to(device, non_blocking=True)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    resize = size is not None and size != x.shape[-1]
    if bits == 16 or resize:
        if bits == 16:  # uint16 counts travel as int16 bits (torch has few uint16 kernels)
            x = (x.to(torch.int32) & 0xFFFF).float() * (255.0 / 65535.0)
        else:
            x = x.float()
        if resize:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.expand(-1, 3, -1, -1).contiguous()


@dataclass
class _Slot:
    host: torch.Tensor
    copied: torch.cuda.Event | None = None


class PixelFeed:
    """Iterates a sampler's batches from a pixel store, prefetching ``depth`` batches ahead.

    Yields the raw path's batch dicts: ``row``, ``pixels`` (on the device), ``error``
    (the pixel store's error for rows that could not be decoded) and ``mask``.
    """

    def __init__(
        self,
        pixels: PixelStore,
        batch_sampler: BlockBatchSampler,
        device: torch.device,
        *,
        with_masks: bool = False,
        size: int | None = None,
        times: StageTimes | None = None,
        depth: int = 4,
    ) -> None:
        self.pixels = pixels
        self.batch_sampler = batch_sampler
        self.device = device
        self.with_masks = with_masks
        self.size = size
        self.times = times or StageTimes()
        self.depth = depth
        self.pinned = device.type == "cuda"
        self.errors = pixels.errors
        self.colour = pixels.has_colour  # then every batch is (B, 3, S, S)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def _spans(self) -> Iterator[list[list[int]]]:
        span: list[list[int]] = []
        for batch in self.batch_sampler:
            if span and batch[-1] - span[0][0] >= READ_ROWS:
                yield span
                span = []
            span.append(batch)
        if span:
            yield span

    def _produce(self, out: queue.Queue, free: queue.Queue, stop: threading.Event) -> None:
        try:
            for span in self._spans():
                lo, hi = span[0][0], span[-1][-1] + 1
                rows = slice(lo, hi)
                images = self.pixels.read_colour(rows) if self.colour else self.pixels.read_images(rows)
                masks = self.pixels.read_masks(slice(lo, hi)) if self.with_masks else None
                for batch in span:
                    local = np.asarray(batch) - lo
                    slot: _Slot = free.get()
                    if stop.is_set():
                        return
                    if slot.copied is not None:
                        slot.copied.synchronize()  # the previous copy out of this buffer has finished
                    host = slot.host[: len(batch)]
                    chosen = images[local]
                    host.copy_(torch.from_numpy(chosen.view(np.int16) if chosen.dtype == np.uint16 else chosen))
                    mask = torch.from_numpy(masks[local]) if masks is not None else None
                    out.put((batch, slot, host, mask))
            out.put(None)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            out.put(exc)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        size = self.pixels.size
        dtype = torch.int16 if self.pixels.bits == 16 else torch.uint8  # int16: the uint16 bytes, see device_batch
        largest = max((len(b) for b in self.batch_sampler), default=1)
        free: queue.Queue = queue.Queue()
        for _ in range(self.depth + 2):
            shape = (largest, 3, size, size) if self.colour else (largest, size, size)
            free.put(_Slot(torch.empty(shape, dtype=dtype, pin_memory=self.pinned)))
        out: queue.Queue = queue.Queue()
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(out, free, stop), name="featx-pixel-feed", daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise RuntimeError(f"reading the pixel store {self.pixels.path} failed: {item}") from item
                batch, slot, host, mask = item
                with self.times.clock("transfer"):
                    pixels = device_batch(host, self.device, self.size, self.pixels.bits)
                    if self.pinned:
                        slot.copied = torch.cuda.Event()
                        slot.copied.record()
                    free.put(slot)
                item = {"row": torch.as_tensor(batch), "pixels": pixels, "error": [str(self.errors[r]) for r in batch]}
                if self.with_masks:
                    item["mask"] = mask
                yield item
        finally:
            stop.set()
            free.put(_Slot(torch.empty(0)))  # wake the producer if it waits for a buffer
            thread.join()


@dataclass
class PixelCache:
    """The pixel store `extract` feeds from: built or reused on first use, once per preprocessing."""

    cache_root: Path
    workers: int | None = None  # decoding processes (default: every CPU core)
    client: Any | None = None  # a Dask client: its workers decode instead
    progress: bool = True
    fingerprint: str = "stat"  # how unchanged raw files are recognised (featx.datasets.stamps)
    builds: dict[str, PixelBuildResult] = field(default_factory=dict)

    def store_for(self, index: SampleIndex, preprocess: PreprocessConfig) -> PixelStore:
        """The published pixel store holding exactly ``index`` under ``preprocess`` (built if needed).

        Checked against the files once per key for the lifetime of this object (one run).
        """
        key, _ = pixel_key(index.dataset, preprocess.to_dict(), 8)
        if key not in self.builds:
            self.builds[key] = build_pixel_store(index, preprocess, self.cache_root, workers=self.workers,
                                                 client=self.client, progress=self.progress,
                                                 fingerprint=self.fingerprint)
        return PixelStore.open(self.builds[key].path)


class PixelDataset(Dataset):
    """A torch Dataset over a pixel store's rows, for fine-tuning and image-aware decoders.

    Item: ``row``, ``image`` (``(S, S)`` uint8/uint16 tensor, ``(3, S, S)`` when the store
    holds colour images; see :func:`device_batch`
    to turn a batch into backbone input), ``labels`` (``(C,)`` float32, NaN = unknown),
    ``mask`` (segmentation) and ``failed``. Failed rows are left out unless ``rows`` names them.
    """

    def __init__(self, store: PixelStore | str | Path, rows: np.ndarray | None = None) -> None:
        self.store = store if isinstance(store, PixelStore) else PixelStore.open(store)
        self.rows = np.flatnonzero(self.store.valid) if rows is None else np.asarray(rows, dtype=np.int64)
        self.labels = self.store.labels
        self.failed = self.store.failed

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.rows[i])
        rows = slice(row, row + 1)
        image = (self.store.read_colour(rows) if self.store.has_colour else self.store.read_images(rows))[0]
        item: dict[str, Any] = {
            "row": row,
            "image": torch.from_numpy(image.astype(np.int32) if image.dtype == np.uint16 else image),
            "labels": torch.from_numpy(self.labels[row]),
            "failed": bool(self.failed[row]),
        }
        if self.store.has_masks:
            item["mask"] = torch.from_numpy(self.store.read_masks(slice(row, row + 1))[0])
        return item

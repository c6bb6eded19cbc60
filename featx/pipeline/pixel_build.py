"""Build (or reuse, resume, update) the pixel store of a dataset: decode every raw file once.

Rows are decoded in *units* by a pool of processes over all CPU cores (or by Dask
workers): a unit is the slices of one volume in a row (the volume is read once for
all of them) or a run of up to ``UNIT_ROWS`` 2D images. This process gathers the
decoded rows into whole blocks and writes each block once it is complete, so only
one writer ever touches a shard. Rows of unchanged files are copied from the
previous published store of the same key; only new, changed and failed rows are
decoded again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from featx.cache.pixels import PixelStore, pixel_key, pixel_paths
from featx.cache.store import StoreError
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig, quantise, resize_mask, to_unit_planes
from featx.datasets.readers import load_sample
from featx.datasets.stamps import row_stamps
from featx.pipeline.decode_pool import decode_pool

UNIT_ROWS = 32  # 2D images per task handed to a decoding process


@dataclass
class PixelBuildResult:
    """Where the pixel store is, under which key, and how the build went."""

    path: Path
    key: str
    n_rows: int
    n_failed: int
    failures: pd.DataFrame
    reused: bool  # the published store already held exactly these samples: nothing was decoded
    rows_decoded: int
    rows_reused: int  # copied from the previous store of this key
    seconds: float
    workers: int

    @property
    def images_per_second(self) -> float:
        return self.rows_decoded / self.seconds if self.seconds > 0 else 0.0


def decode_row(
    row: dict[str, Any], preprocess: PreprocessConfig, bits: int, with_masks: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """One sample row -> its ``(S, S)`` grey plane (uint8/uint16), its ``(3, S, S)`` channels if it is
    a colour image (else None; the grey plane is then their mean) and, for segmentation, its ``(S, S)`` mask."""
    image, mask = load_sample(row)
    planes = quantise(to_unit_planes(image, preprocess), bits)
    colour = None
    if planes.shape[0] == 3 and not (np.array_equal(planes[0], planes[1]) and np.array_equal(planes[0], planes[2])):
        colour = planes
        grey = np.rint(planes.mean(axis=0, dtype=np.float64)).astype(planes.dtype)
    else:
        grey = planes[0]
    size = preprocess.size
    if with_masks:
        mask = resize_mask(mask, size) if mask is not None else np.zeros((size, size), np.uint8)
    return grey, colour, mask


@dataclass
class DecodedUnit:
    """A unit's decoded rows: grey planes, colour channels (None when every row is grey), masks, errors."""

    images: np.ndarray
    colour: np.ndarray | None
    masks: np.ndarray | None
    errors: list[str]


def decode_unit(
    records: list[dict[str, Any]], preprocess: PreprocessConfig, bits: int, with_masks: bool
) -> DecodedUnit:
    """Decode a unit's rows; a row that fails keeps zeros and its error ("" = fine)."""
    size = preprocess.size
    dtype = np.uint16 if bits == 16 else np.uint8
    out = DecodedUnit(np.zeros((len(records), size, size), dtype=dtype), None,
                      np.zeros((len(records), size, size), dtype=np.uint8) if with_masks else None, [""] * len(records))
    for i, row in enumerate(records):
        try:
            image, colour, mask = decode_row(row, preprocess, bits, with_masks)
        except Exception as exc:  # any decoding failure is recorded for this row, the build goes on
            message = str(exc)
            out.errors[i] = message if str(row["source"]) in message else f"{row['source']}: {message}"
            continue
        out.images[i] = image
        if colour is not None:
            if out.colour is None:
                out.colour = np.zeros((len(records), 3, size, size), dtype=dtype)
            out.colour[i] = colour
        if out.masks is not None:
            out.masks[i] = mask
    return out


def plan_units(table: pd.DataFrame, rows: np.ndarray, unit_rows: int = UNIT_ROWS) -> list[np.ndarray]:
    """Split ``rows`` (ascending) into units: consecutive slices of one volume, or up to ``unit_rows`` 2D rows."""
    sources = table["source"].to_numpy()
    is_slice = (table["volume_id"] != "").to_numpy()
    units: list[list[int]] = []
    for row in rows.tolist():
        last = units[-1] if units else None
        if last is not None and row == last[-1] + 1:
            same_volume = is_slice[row] and is_slice[last[-1]] and sources[row] == sources[last[-1]]
            same_run = not is_slice[row] and not is_slice[last[-1]] and len(last) < unit_rows
            if same_volume or same_run:
                last.append(row)
                continue
        units.append([row])
    return [np.asarray(unit, dtype=np.int64) for unit in units]


@dataclass
class _Block:
    images: np.ndarray
    masks: np.ndarray | None
    errors: list[str]
    missing: int
    colour: np.ndarray | None = None  # allocated when the block's first colour row arrives


@dataclass
class BlockAssembler:
    """Collects decoded rows per block of a writable pixel store and writes each block once complete."""

    store: PixelStore
    blocks: list[int]
    pending: dict[int, _Block] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dtype = np.uint16 if self.store.bits == 16 else np.uint8
        size = self.store.size
        for block in self.blocks:
            span = self.store.block_slice(block)
            n = span.stop - span.start
            masks = np.zeros((n, size, size), np.uint8) if self.store.has_masks else None
            self.pending[block] = _Block(np.zeros((n, size, size), dtype), masks, [""] * n, n)

    def add(self, rows: np.ndarray, unit: DecodedUnit) -> None:
        """Place decoded rows; write every block this completes."""
        block_rows = self.store.block_rows
        for block in np.unique(rows // block_rows).tolist():
            pick = np.flatnonzero(rows // block_rows == block)
            local = rows[pick] - block * block_rows
            target = self.pending[block]
            target.images[local] = unit.images[pick]
            if target.masks is not None and unit.masks is not None:
                target.masks[local] = unit.masks[pick]
            if unit.colour is not None:
                if target.colour is None:
                    target.colour = np.zeros((len(target.errors), 3, *target.images.shape[1:]), target.images.dtype)
                target.colour[local] = unit.colour[pick]
            for i, j in zip(local.tolist(), pick.tolist()):
                target.errors[i] = unit.errors[j]
            target.missing -= len(local)
            if target.missing == 0:
                self.store.write_block(block, target.images, target.masks, target.errors, target.colour)
                del self.pending[block]

    def check_done(self) -> None:
        if self.pending:
            raise StoreError(f"{self.store.path}: blocks {sorted(self.pending)[:5]} were not completed")


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """One build of a pixel store at a time; a second waits, then finds the first one's store published.

    (Two extractions of different backbones over one dataset, e.g. one per GPU, share its pixel store.)
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another build of this pixel store to finish ({path})", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _decoded_units(
    units: list[np.ndarray],
    records: list[dict[str, Any]],
    args: tuple[PreprocessConfig, int, bool],
    workers: int,
    client: Any | None,
) -> Iterator[tuple[np.ndarray, DecodedUnit]]:
    """(rows, decoded unit) for every unit, in completion order: inline, a process pool, or Dask."""
    jobs = [(unit, [records[i] for i in unit.tolist()]) for unit in units]
    if client is not None:
        from distributed import as_completed

        futures = {client.submit(decode_unit, rows_records, *args, pure=False): unit for unit, rows_records in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
        return
    if workers <= 1:
        for unit, rows_records in jobs:
            yield unit, decode_unit(rows_records, *args)
        return
    with decode_pool(workers) as pool:
        queue = iter(jobs)
        in_flight: dict[Any, np.ndarray] = {}
        while True:
            while len(in_flight) < 4 * workers:  # bounded: decoded rows never pile up in memory
                job = next(queue, None)
                if job is None:
                    break
                in_flight[pool.submit(decode_unit, job[1], *args)] = job[0]
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                yield in_flight.pop(future), future.result()


def build_pixel_store(
    index: SampleIndex,
    preprocess: PreprocessConfig,
    cache_root: str | Path,
    *,
    bits: int = 8,
    workers: int | None = None,
    block_rows: int | None = None,
    progress: bool = True,
    client: Any | None = None,
    fingerprint: str = "stat",
) -> PixelBuildResult:
    """Decode ``index`` once into its pixel store under ``cache_root``; reuse, resume or update it.

    ``workers``: decoding processes (default: every CPU core; 0 or 1 decodes here).
    ``client``: a Dask client whose workers decode instead.
    ``fingerprint``: how unchanged raw files are recognised (``stat`` or ``content``).
    """
    started = time.perf_counter()
    workers = (os.cpu_count() or 1) if workers is None else workers
    key, key_inputs = pixel_key(index.dataset, preprocess.to_dict(), bits)
    final, partial = pixel_paths(cache_root, index.dataset, key)
    stamps = row_stamps(index.table, fingerprint)
    with_masks = index.task == "segmentation"
    previous = None
    with _build_lock(final.with_name(f"{key}.lock")):
        if final.exists():
            published = PixelStore.open(final)
            if published.matches_index(index, stamps):
                failures = published.failures()
                return PixelBuildResult(final, key, published.n_rows, len(failures), failures, True, 0, 0,
                                        time.perf_counter() - started, 0)
            previous = published  # the dataset grew or changed: copy what is unchanged
        store = None
        if partial.exists():
            store = PixelStore.open(partial, writable=True, allow_partial=True)
            if store.key != key or not store.matches_index(index, stamps):
                shutil.rmtree(partial)  # left by a build over other samples: start again
                store = None
        if store is None:
            store = PixelStore.create(partial, key=key, key_inputs=key_inputs, index=index, stamps=stamps,
                                      size=preprocess.size, bits=bits, block_rows=block_rows, with_masks=with_masks)
        blocks = store.pending_blocks()
        todo = np.zeros(len(index), dtype=bool)
        for block in blocks:
            todo[store.block_slice(block)] = True
        assembler = BlockAssembler(store, blocks)
        copied = previous.reusable_rows(index, stamps) if previous is not None else np.full(len(index), -1)
        copy_rows = np.flatnonzero(todo & (copied >= 0))
        for start in range(0, len(copy_rows), store.block_rows):
            rows = copy_rows[start : start + store.block_rows]
            old = copied[rows]
            masks = previous.read_masks(old) if with_masks else None
            unit = DecodedUnit(previous.read_images(old), previous.colour_channels(old), masks, [""] * len(rows))
            assembler.add(rows, unit)
        decode = np.flatnonzero(todo & (copied < 0))
        records = index.table.to_dict("records")
        units = plan_units(index.table, decode, UNIT_ROWS if client is None else 8 * UNIT_ROWS)
        n_failed = 0
        decoded = _decoded_units(units, records, (preprocess, bits, with_masks), workers, client)
        with contextlib.closing(decoded), tqdm(total=len(decode), unit="images", desc=f"pixels {index.dataset}",
                                               disable=not progress, smoothing=0.1) as bar:
            for rows, unit in decoded:  # closed on any stop: the decoding pool is killed
                assembler.add(rows, unit)
                n_failed += sum(1 for e in unit.errors if e)
                bar.update(len(rows))
                if n_failed:
                    bar.set_postfix(failed=n_failed)
        assembler.check_done()
        path = store.publish()
    published = PixelStore.open(path)
    failures = published.failures()
    return PixelBuildResult(path, key, published.n_rows, len(failures), failures, False, len(decode), len(copy_rows),
                            time.perf_counter() - started,
                            len(client.nthreads()) if client is not None else max(1, workers))

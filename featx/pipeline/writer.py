"""Writer stage: gathers batches into whole blocks and writes them off the compute path.

Runs in a background thread with a bounded queue, so the backbone keeps computing
while Zarr compresses and writes; a block is written only once all its rows are in.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field

import numpy as np

from featx.cache.store import FeatureStore


@dataclass
class Batch:
    """One computed batch: store rows, features[layer][kind], per-row errors, masks."""

    rows: np.ndarray
    features: dict[str, dict[str, np.ndarray]]
    errors: list[str]
    masks: np.ndarray | None = None


@dataclass
class _PendingBlock:
    block: int
    start: int
    n: int
    features: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    masks: np.ndarray | None = None
    filled: int = 0


class BlockWriter:
    """Accumulates batches per block and writes each complete block in a thread."""

    def __init__(self, store: FeatureStore, max_queued_batches: int = 8) -> None:
        self.store = store
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=max_queued_batches)
        self.pending: dict[int, _PendingBlock] = {}
        self.blocks_written = 0
        self.rows_written = 0  # read by the producer's progress bar (an int: safe across threads)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="featx-writer", daemon=True)
        self.thread.start()

    def put(self, batch: Batch) -> None:
        """Hand a batch to the writer (blocks when the queue is full)."""
        self._raise_if_failed()
        self.queue.put(batch)

    def close(self) -> None:
        """Flush everything and stop; re-raises a failure of the writer thread."""
        self.queue.put(None)
        self.thread.join()
        self._raise_if_failed()
        if self.pending:
            raise RuntimeError(f"writer closed with incomplete blocks {sorted(self.pending)}")

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"writing the feature store failed: {self.error}") from self.error

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            if self.error is not None:
                continue  # drain the queue so the producer never blocks; the error is raised there
            try:
                self._add(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                self.error = exc

    def _add(self, batch: Batch) -> None:
        block = int(batch.rows[0]) // self.store.block_rows
        pending = self.pending.get(block)
        if pending is None:
            span = self.store.block_slice(block)
            pending = _PendingBlock(block=block, start=span.start, n=span.stop - span.start)
            pending.errors = [""] * pending.n
            self.pending[block] = pending
        local = batch.rows - pending.start
        for layer, kinds in batch.features.items():
            for kind, values in kinds.items():
                target = pending.features.setdefault(layer, {}).setdefault(
                    kind, np.empty((pending.n, *values.shape[1:]), dtype=np.float16)
                )
                target[local] = values
        if batch.masks is not None:
            if pending.masks is None:
                pending.masks = np.zeros((pending.n, *batch.masks.shape[1:]), dtype=np.uint8)
            pending.masks[local] = batch.masks
        for i, error in zip(local, batch.errors):
            pending.errors[int(i)] = error
        pending.filled += len(local)
        if pending.filled == pending.n:
            failed = np.array([bool(e) for e in pending.errors])
            self.store.write_block(block, pending.features, failed, pending.errors, pending.masks)
            del self.pending[block]
            self.blocks_written += 1
            self.rows_written += pending.n

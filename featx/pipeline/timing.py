"""Where an extraction's time goes: reading inputs, host-to-device transfer, compute, writing."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import TypeVar

STAGES = ("read", "transfer", "compute", "write")
T = TypeVar("T")


@dataclass
class StageTimes:
    """Seconds the extracting thread spent in (or waiting on) each stage."""

    read: float = 0.0  # waiting for the next batch (decoding or pixel-store reads not hidden by prefetch)
    transfer: float = 0.0  # host-to-device copies issued from the pixel store (the raw path's are in compute)
    compute: float = 0.0  # normalisation, forward, packing, device-to-host (incl. waits on the device)
    write: float = 0.0  # handing features to the writer when its queue is full, and its final flush

    @contextlib.contextmanager
    def clock(self, stage: str) -> Iterator[None]:
        """Add the time spent inside the block to ``stage``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, stage, getattr(self, stage) + time.perf_counter() - start)

    def timed_reads(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, adding the wait for each to ``read`` (less any ``transfer`` counted meanwhile)."""
        iterator = iter(items)
        while True:
            start, transfer = time.perf_counter(), self.transfer
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.read += time.perf_counter() - start - (self.transfer - transfer)
            yield item

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def summary(self) -> str:
        """``read 1.2s (10%), transfer ...`` in stage order."""
        total = self.total or 1.0
        return ", ".join(f"{name} {getattr(self, name):.2f}s ({100 * getattr(self, name) / total:.0f}%)"
                         for name in STAGES)

"""Ctrl-C and SIGTERM during an extraction: keep what was written and say so (the CLI exits 130)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path


class Interrupted(Exception):
    """A run stopped by Ctrl-C or SIGTERM; the message says what was kept and how to resume."""


def rows_saved(partial: Path) -> int:
    """Rows already written to a partial store (0 when it was never laid out)."""
    from featx.cache.store import FeatureStore

    if not (partial / "zarr.json").exists():
        return 0
    return int(FeatureStore.open(partial, allow_partial=True).written.sum())


def interrupted_message(partial: Path) -> str:
    """The one line an interrupted extraction ends with."""
    return f"interrupted: {rows_saved(partial)} rows saved in {partial}; re-run the same command to resume"


@contextlib.contextmanager
def keep_work_on_interrupt(partial: Path) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into a clean stop: the blocks already written stay, the message says how many.

    Whatever the interrupt sets off on its way out (a DataLoader worker gone, the writer
    closing on a half block) is part of the interrupt, not a new error.
    """
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        yield
    except BaseException as error:
        if not received and not isinstance(error, KeyboardInterrupt):
            raise
        raise Interrupted(interrupted_message(partial)) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

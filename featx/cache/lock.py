"""The lock one extraction of a store holds: refuses a second writer, names the holder.

A POSIX record lock (``lockf``), not ``flock``: it belongs to the process that took
it and is not inherited by the processes it forks, so DataLoader workers never hold
it and a writer killed with ``kill -9`` frees it at once, even while its workers are
still winding down. The lock file records the holder's pid, host and start time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from featx.cache.store import StoreError


def holder(path: Path) -> str:
    """Who the lock file says holds (or last held) it."""
    try:
        return path.read_text().strip() or "holder unknown"
    except OSError:
        return "holder unknown"


def is_locked(path: Path) -> bool:
    """Whether another process holds the lock at ``path`` now (tried and released at once).

    Call it only from a process that does not hold the lock itself: closing any handle
    on the file drops this process's POSIX locks on it.
    """
    if not path.exists():
        return False
    descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` for one extraction; a second one is refused with the holder's pid and host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreError(f"{path}: another extraction of this store is running ({holder(path)})") from None
        os.ftruncate(descriptor, 0)
        since = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        os.pwrite(descriptor, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.lockf(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)

"""A pool of decoding processes that never outlives its run.

Workers die with the process that started them (Linux: ``PR_SET_PDEATHSIG``; elsewhere
a watchdog thread polling the parent id), ignore Ctrl-C from their first instruction
(the run's own process stops them), and hold neither the caller's stdout/stderr nor the terminal: their stdin,
stdout and stderr are /dev/null. A run that stops for any reason kills its workers
instead of waiting for them, so a worker blocked writing a result nobody reads cannot
hang the stop, and nothing is left holding a lock file after kill -9 of the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
WATCHDOG_SECONDS = 0.5


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` does (kill -9 included); already gone: end now."""
    armed = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:  # the parent died before the watch was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="featx-parent-watch", daemon=True).start()


def _init_worker(parent: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the run handles it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since the fork (see DecodePool.submit)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # let go of the caller's pipes and terminal
        os.dup2(null, fd)
    os.close(null)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL every worker of ``pool`` and drop its queued work, without waiting on any pipe."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            process.join(timeout=5)


class DecodePool(ProcessPoolExecutor):
    """A process pool whose workers are forked with Ctrl-C and SIGTERM blocked.

    Workers are forked inside ``submit``; a Ctrl-C reaching a worker before its
    initializer ran would otherwise run this process's handler there (a traceback).
    The signals stay pending here and are handled as soon as ``submit`` returns.
    """

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def decode_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool of ``workers`` decoders; on any exception (Ctrl-C included) its workers are killed."""
    pool = DecodePool(max_workers=workers, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        kill_workers(pool)
        raise
    else:
        pool.shutdown(wait=True)

"""A report folder switched in whole: written into a new folder beside the old one, then exchanged with it.

On Linux the two folders are exchanged in one step (``renameat2(RENAME_EXCHANGE)``);
elsewhere the old one is renamed aside and the new one renamed in. Either way a reader
never sees a mix of old and new files, and a write that fails (a full disk) leaves the
earlier report as it was. Staging folders a killed run left behind are removed by the next.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

STAGING = ".featx-new-"  # .<name>.featx-new-<pid>-<ns>: a report being written for <name>
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


class ReportWriteError(ValueError):
    """The report could not be written; the earlier report (if any) is unchanged."""


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths in one step (Linux); OSError ENOSYS / EINVAL where that is not supported."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(b))


def switch_in(new: Path, out: Path) -> None:
    """Make folder ``new`` the folder ``out``; the earlier ``out`` (if any) ends up at ``new`` (to be removed)."""
    if not out.exists():
        os.rename(new, out)
        return
    try:
        _exchange(new, out)
    except OSError as error:
        if error.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
        aside = new.with_name(new.name + "-old")
        os.rename(out, aside)
        try:
            os.rename(new, out)
        except OSError:
            os.rename(aside, out)
            raise
        os.rename(aside, new)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(out: Path) -> None:
    """Remove the staging folders of ``out`` whose writing process is gone (a run that was killed)."""
    prefix = f".{out.name}{STAGING}"
    for folder in out.parent.glob(f"{prefix}*"):
        pid = folder.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A new folder beside ``out`` to write a report into, switched in for ``out`` when the block succeeds.

    An OSError while writing or switching (a full disk, a read-only mount) becomes a
    :class:`ReportWriteError` saying the earlier report is unchanged; any other error
    propagates. The staging folder is removed in every case.
    """
    out = out.resolve()  # a link to a report folder: its target is replaced, not the link
    stage = out.with_name(f".{out.name}{STAGING}{os.getpid()}-{time.time_ns()}")
    had_report = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out)
        stage.mkdir()
        yield stage
        switch_in(stage, out)
    except OSError as error:
        kept = "the report already there is unchanged" if had_report else "no report was written"
        raise ReportWriteError(f"{out}: could not write the report ({error.strerror or error}); {kept}; "
                               "free some space (or give another --out) and run it again") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)

"""The results file (JSON lines): appended durably, read back whole, a crash's torn tail set aside.

An append takes an exclusive lock on the file, starts a new line when the last one lacks its
newline, writes all its lines in one go, and flushes and fsyncs them. An append that fails (a
full disk) is cut back to what the file held before, and its records are saved to a rescue
file that the error names: computed records are never thrown away. A torn tail left by a
crash (a last line that is not JSON and has no newline) is read past with a warning, and the
next append moves it to ``R.torn-<UTC time>.<random>`` beside the file before appending.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featx.evaluation.features import ProbeError

log = logging.getLogger("featx.results")


class ResultsWriteError(ProbeError):
    """Records could not be appended to a results file; the message says where they were saved."""


@dataclass(frozen=True)
class ResultsLines:
    """The complete lines of a results file and, if a crash left one, its torn last line."""

    lines: list[tuple[int, str]]  # (line number, text) of every non-blank complete line
    torn: bytes = b""  # a last line without newline that is not valid JSON


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


def split_lines(path: Path, data: bytes) -> ResultsLines:
    """The lines of a results file's bytes ``data``; a last line without newline counts when it is valid JSON."""
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    torn = tail if tail.strip() and not _is_json(tail) else b""
    body = data[:cut] if torn else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        line = body[: error.start].count(b"\n") + 1
        raise ProbeError(f"{path}:{line}: not UTF-8 text ({error.reason}); was this file written by featx?") from None
    lines = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    return ResultsLines(lines, torn)


def torn_note(path: Path, torn: bytes) -> str:
    """The warning for a torn last line that a reader leaves out."""
    return (f"{path}: its last line is torn ({len(torn)} bytes without a newline, a write cut short by a crash); "
            "it is left out, and the next append to this file sets it aside beside it")


@contextlib.contextmanager
def _locked(path: Path, flags: int, lock: int) -> Iterator[int]:
    fd = os.open(path, flags, 0o644)
    try:
        with contextlib.suppress(OSError):  # a file system without locks still reads and appends
            fcntl.flock(fd, lock)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def read_lines(path: str | Path) -> ResultsLines:
    """A results file's lines, read under a shared lock so no half-written append is seen; none if it is absent."""
    path = Path(path)
    if not path.exists():
        return ResultsLines([])
    with _locked(path, os.O_RDONLY, fcntl.LOCK_SH) as fd, os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read()
    return split_lines(path, data)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a results file ([] if it is absent); a torn last line is left out with a warning."""
    path = Path(path)
    read = read_lines(path)
    if read.torn:
        log.warning("warning: %s", torn_note(path, read.torn))
    out = []
    for number, line in read.lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ProbeError(f"{path}:{number}: not a JSON line ({error})") from error
    return out


def _utc_stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _save_beside(folder: Path, prefix: str, data: bytes, suffix: str = "") -> Path:
    """``data`` in a new file ``folder/prefix*suffix``, flushed to disk; a failed save leaves no file."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


_RESCUED: dict[Path, Path] = {}  # results file -> where this process saved what could not be appended to it


def _add_to(saved: Path, data: bytes) -> Path:
    fd = os.open(saved, os.O_WRONLY | os.O_APPEND)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return saved


def rescue(path: Path, data: bytes) -> Path | None:
    """Save records that could not be appended to ``path``: beside it, else in the temp folder, else at home.

    Within one process every rescue for ``path`` goes to the same file, so the last error names all of them.
    """
    key = path.absolute()
    if key in _RESCUED:
        with contextlib.suppress(OSError):
            return _add_to(_RESCUED[key], data)
    prefix = f"{path.name}.rescued-{_utc_stamp()}-"
    for folder in (path.parent, Path(tempfile.gettempdir()), Path.home()):
        try:
            _RESCUED[key] = _save_beside(folder, prefix, data, ".jsonl")
        except OSError:
            continue  # that folder is full or read-only too: the next one
        return _RESCUED[key]
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _tail(fd: int, size: int, block: int = 1 << 16) -> bytes:
    """The bytes after the file's last newline (b"" when it ends with one)."""
    tail = b""
    end = size
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return chunk[cut + 1 :] + tail
        tail = chunk + tail
        end = start
    return tail


def _set_aside(fd: int, path: Path, size: int, torn: bytes) -> int:
    """Move a torn last line into ``R.torn-*`` beside ``path`` and cut it off; the new size."""
    saved = _save_beside(path.parent, f"{path.name}.torn-{_utc_stamp()}.", torn)
    os.ftruncate(fd, size - len(torn))
    os.fsync(fd)
    log.warning("warning: %s: its last line was torn (%d bytes without a newline, a write cut short by a crash); "
                "set aside as %s", path, len(torn), saved)
    return size - len(torn)


def append_records(path: str | Path, records: Sequence[dict[str, Any]]) -> int:
    """Append ``records`` (cleaned, one JSON object per line) to ``path``; how many were written.

    Raises :class:`ResultsWriteError` naming the rescue file when they could not be
    appended; the results file is then as it was before.
    """
    path = Path(path)
    rows = "".join(json.dumps(record, allow_nan=False) + "\n" for record in records).encode()
    if not rows:
        return 0
    step = "open"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, fcntl.LOCK_EX) as fd:
            size = os.fstat(fd).st_size
            tail = _tail(fd, size)
            step = "set aside the torn last line of"
            if tail.strip() and not _is_json(tail):
                size = _set_aside(fd, path, size, tail)
                tail = b""
            step = "append to"
            try:
                _write_all(fd, (b"\n" if tail else b"") + rows)
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)  # back to what it held: no torn line left behind
                    os.fsync(fd)
                raise
    except OSError as error:
        saved = rescue(path, rows)
        where = (f"the {len(records)} records were saved to {saved}; when it is fixed, append that file to it with "
                 f"`cat {saved} >> {path}`") if saved else f"the {len(records)} records could not be saved anywhere"
        raise ResultsWriteError(f"{path}: could not {step} it ({error.strerror or error}); what it held is "
                                f"unchanged and {where}") from None
    return len(records)

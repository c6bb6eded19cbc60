"""Versioned, immutable publishes behind one atomically switched pointer (any store type).

Layout, for a store named ``<key>`` with suffix ``.zarr`` in ``folder``::

    <key>.zarr             symlink -> <key>.versions/v0002.zarr   (the pointer: what plain tools open)
    <key>.versions/v0001.zarr   an older published version, never written again
    <key>.versions/v0002.zarr   the current one
    <key>.versions/v0002.readers  readers hold a shared lock on it while they read v0002
    <key>.zarr.partial     the next version, while it is built

Publishing is one rename (``.partial`` -> the next ``vNNNN``) and one atomic pointer
switch (a new symlink renamed over the old one). A reader resolves the pointer once
when it opens and keeps that version, so a rebuild never changes what it reads. A
kill between the two steps leaves a complete version newer than the pointer, which
:meth:`Versions.recover` switches to. Plain zarr/xarray and static HTTP servers follow
the symlink; ``featx`` readers over HTTP read the version from the store's attributes
and pin the version's own URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

VERSIONS_SUFFIX = ".versions"
READERS_SUFFIX = ".readers"
_VERSION = re.compile(r"^v(\d{4,})$")
log = logging.getLogger(__name__)


def version_name(number: int, suffix: str = ".zarr") -> str:
    """The folder name of version ``number`` (``v0003.zarr``)."""
    return f"v{number:04d}{suffix}"


def version_relpath(key: str, number: int, suffix: str = ".zarr") -> str:
    """Where version ``number`` of ``key`` lies relative to the folder of its pointer."""
    return f"{key}{VERSIONS_SUFFIX}/{version_name(number, suffix)}"


@dataclass(frozen=True)
class Versions:
    """The published versions of one store (``key``) in ``folder``."""

    folder: Path
    key: str
    suffix: str = ".zarr"

    @classmethod
    def of(cls, path: Path, suffix: str = ".zarr") -> Versions:
        """The versions a pointer, a partial or a version folder belongs to."""
        path = Path(path)
        if path.parent.name.endswith(VERSIONS_SUFFIX):
            return cls(path.parent.parent, path.parent.name.removesuffix(VERSIONS_SUFFIX), suffix)
        name = path.name.removesuffix(".partial").removesuffix(suffix)
        return cls(path.parent, name, suffix)

    @property
    def pointer(self) -> Path:
        return self.folder / f"{self.key}{self.suffix}"

    @property
    def partial(self) -> Path:
        return self.folder / f"{self.key}{self.suffix}.partial"

    @property
    def directory(self) -> Path:
        return self.folder / f"{self.key}{VERSIONS_SUFFIX}"

    def path(self, number: int) -> Path:
        return self.directory / version_name(number, self.suffix)

    def numbers(self) -> list[int]:
        """Every published version, oldest first."""
        if not self.directory.is_dir():
            return []
        found = (_VERSION.match(p.name.removesuffix(self.suffix)) for p in self.directory.iterdir()
                 if p.name.endswith(self.suffix))
        return sorted(int(m.group(1)) for m in found if m)

    def current(self) -> int | None:
        """The version the pointer names, or None when nothing is published.

        The symlink rules; a folder with only the pointer document (a copy of an object
        store's) is read from that.
        """
        if not self.pointer.is_symlink():
            from featx.cache.pointer import read_local

            body = read_local(self.folder, self.key)
            return int(body["version"]) if body else None
        match = _VERSION.match(Path(os.readlink(self.pointer)).name.removesuffix(self.suffix))
        return int(match.group(1)) if match else None

    def publish(self, built: Path, number: int) -> Path:
        """Move the finished ``built`` folder in as version ``number`` and point at it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(number)
        os.rename(built, target)
        (self.directory / f"{target.name}{READERS_SUFFIX}").touch()
        _fsync_dir(self.directory)
        self.switch(number)
        return self.pointer

    def next_number(self) -> int:
        return max(self.numbers(), default=0) + 1

    def switch(self, number: int) -> None:
        """Point at version ``number`` atomically: a new symlink renamed over the old, then the pointer document.

        The document (``<key>.pointer.json``, featx.cache.pointer) is what object stores and
        their readers follow; it is written second, so it never names a version the symlink does not.
        A pointer that a copy turned into a folder is adopted first (:meth:`adopt`).
        """
        from featx.cache.pointer import write_local

        self.adopt()
        if self.pointer.exists() and not self.pointer.is_symlink():
            raise FileExistsError(f"{self.pointer}: a file, not a version pointer; move it away and re-run")
        staged = self.folder / f".{self.pointer.name}.switch-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()
        os.symlink(os.path.relpath(self.path(number), self.folder), staged)
        os.replace(staged, self.pointer)
        write_local(self.folder, self.key, number, self.suffix)
        _fsync_dir(self.folder)

    def adopt(self) -> str | None:
        """A pointer that is a folder (a cache copied by a tool that follows links): make it a version again.

        The folder holds the version it was a link to (its ``version`` attribute). Where that
        version is not in ``<key>.versions`` the folder is moved there; where it is, with the
        same root metadata, the folder is a second copy of it and is dropped. Either way the
        pointer is a link again. Returns what was done (also logged), or None if nothing.
        """
        pointer = self.pointer
        if pointer.is_symlink() or not pointer.is_dir():
            return None
        number = declared_version(pointer)
        if number is None:
            raise FileExistsError(f"{pointer}: a folder that names no published version; move it away and re-run")
        target = self.path(number)
        if target.exists():
            if (target / "zarr.json").read_bytes() != (pointer / "zarr.json").read_bytes():
                raise FileExistsError(f"{pointer}: a folder holding version {number}, but {target} differs from it; "
                                      "move one of them away and re-run")
            aside = self.folder / f".{pointer.name}.copy-{os.getpid()}"
            os.rename(pointer, aside)
            self.switch(number)
            shutil.rmtree(aside)
            done = (f"{pointer}: was a second copy of version {number} (the cache was copied following links); "
                    f"removed the copy and pointed at {target} again")
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            os.rename(pointer, target)
            (self.directory / f"{target.name}{READERS_SUFFIX}").touch()
            _fsync_dir(self.directory)
            self.switch(number)
            done = (f"{pointer}: was a folder, not a version pointer (the cache was copied following links); "
                    f"adopted it as version {number} ({target})")
        log.warning("%s", done)
        return done

    def recover(self) -> int | None:
        """After a kill between publish's rename and switch: point at the newest version.

        A pointer turned into a folder by a copy is adopted first (:meth:`adopt`).
        """
        self.adopt()
        newest = max(self.numbers(), default=None)
        if newest is not None and newest != self.current():
            self.switch(newest)
            return newest
        return None

    def in_use(self, number: int) -> bool:
        """Whether some reader holds version ``number`` open (a shared lock on its readers file)."""
        readers = self.directory / f"{version_name(number, self.suffix)}{READERS_SUFFIX}"
        if not readers.exists():
            return False
        with open(readers) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def collect(self, keep: int) -> tuple[list[int], list[int]]:
        """Delete old versions: all but the current one and the newest ``keep``, skipping any being read.

        Returns (removed, kept because a reader holds them).
        """
        numbers = self.numbers()
        protected = set(numbers[-max(keep, 1):]) | {self.current()}
        removed, held = [], []
        for number in numbers:
            if number in protected:
                continue
            if self.in_use(number):
                held.append(number)
                continue
            shutil.rmtree(self.path(number))
            (self.directory / f"{version_name(number, self.suffix)}{READERS_SUFFIX}").unlink(missing_ok=True)
            removed.append(number)
        return removed, held


def declared_version(folder: Path) -> int | None:
    """The ``version`` a store folder's root attributes record (under any attribute key), if any."""
    try:
        attributes = json.loads((folder / "zarr.json").read_bytes()).get("attributes") or {}
    except (OSError, ValueError, AttributeError):
        return None
    for value in attributes.values():
        number = value.get("version") if isinstance(value, dict) else None
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number
    return None


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (so a power cut cannot undo a publish)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def hold_for_reading(path: Path) -> IO[str] | None:
    """A shared lock that keeps ``featx cache gc`` off version folder ``path`` while it is read.

    Returns the open handle (the lock lasts as long as it), or None where ``path`` is not a
    version folder or its readers file cannot be opened (a read-only copy without one).
    """
    readers = path.parent / f"{path.name}{READERS_SUFFIX}"
    if not path.parent.name.endswith(VERSIONS_SUFFIX) or not readers.exists():
        return None
    try:
        handle = open(readers)  # noqa: SIM115 - the lock lasts as long as this handle, returned
    except OSError:
        return None
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def version_folders(root: Path) -> Iterator[Versions]:
    """Every versioned store under a cache root (``<dataset>/<backbone>/<key>.versions``)."""
    for directory in sorted(root.glob(f"*/*/*{VERSIONS_SUFFIX}")):
        yield Versions(directory.parent, directory.name.removesuffix(VERSIONS_SUFFIX))

"""The object-store-safe version pointer: ``<key>.pointer.json``, naming a store's current version.

Object stores (S3, GCS, MinIO) have no symlinks, so the local pointer ``<key>.zarr`` (a
symlink to ``<key>.versions/vNNNN.zarr``) does not exist there. Beside it every publish
writes a small JSON document naming the same version::

    {"featx_pointer": 1, "key": "<key>", "version": 2, "path": "<key>.versions/v0002.zarr"}

Locally it is written after the symlink, atomically (a temporary file renamed over it);
``featx cache push`` uploads it after every object of the version it names. A reader
(local, HTTP or S3) that finds it opens the version it names and keeps reading that
version, so a publish or a push in progress never changes what it reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from featx.cache.versions import version_relpath

POINTER_SUFFIX = ".pointer.json"
FORMAT = 1


class PointerError(ValueError):
    """A pointer document that cannot be read as one."""


def pointer_name(key: str) -> str:
    """The file (object) name of ``key``'s pointer."""
    return f"{key}{POINTER_SUFFIX}"


def document(key: str, number: int, suffix: str = ".zarr") -> bytes:
    """The pointer's bytes for version ``number`` of ``key``."""
    body = {"featx_pointer": FORMAT, "key": key, "version": number, "path": version_relpath(key, number, suffix)}
    return (json.dumps(body, sort_keys=True) + "\n").encode()


def parse(data: bytes, where: str) -> dict[str, Any]:
    """The pointer document in ``data`` (read from ``where``), checked."""
    try:
        body = json.loads(data)
    except ValueError:
        raise PointerError(f"{where}: not a featx version pointer (not JSON); remove it and publish again") from None
    if not isinstance(body, dict) or body.get("featx_pointer") != FORMAT or not isinstance(body.get("version"), int):
        raise PointerError(f"{where}: not a featx version pointer (format {FORMAT}); remove it and publish again")
    path = str(body.get("path", ""))
    if path.startswith("/") or ".." in Path(path).parts or not path:
        raise PointerError(f"{where}: the pointer names {path!r}, not a version beside it; remove it and publish again")
    return body


def write_local(folder: Path, key: str, number: int, suffix: str = ".zarr") -> Path:
    """Point ``folder/<key>.pointer.json`` at version ``number`` atomically and durably."""
    target = folder / pointer_name(key)
    staged = folder / f".{target.name}.{os.getpid()}"
    with open(staged, "wb") as handle:
        handle.write(document(key, number, suffix))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staged, target)
    return target


def read_local(folder: Path, key: str) -> dict[str, Any] | None:
    """The pointer document of ``key`` in ``folder``, or None where there is none."""
    target = folder / pointer_name(key)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return None
    return parse(data, str(target))


def beside(store: str) -> tuple[str, str]:
    """For a store's pointer path or URL (``.../<key>.zarr``): (its folder, the pointer document's path)."""
    store = store.rstrip("/")
    folder, _, name = store.rpartition("/")
    key = name.removesuffix(".zarr")
    return folder, f"{folder}/{pointer_name(key)}"


def resolve_url(url: str) -> str | None:
    """The URL of the version a store URL's pointer document names, or None where it has none.

    ``url`` names a store's pointer (``.../<key>.zarr``), over any fsspec protocol. The
    document is fetched directly (never from a listing cache), so a push that has just
    finished is seen.
    """
    from featx.cache.remote import StoreFiles  # time-outs, retries and messages naming the URL

    folder, where = beside(url)
    name = where.rsplit("/", 1)[-1]
    data = StoreFiles(folder).read([name])[name]
    if data is None or data.lstrip()[:1] == b"<":  # none there, or a web server's page for any path
        return None
    return f"{folder}/{parse(data, where)['path']}"


def resolve_local(path: Path) -> Path | None:
    """The version folder a local ``<key>.zarr`` path's pointer document names (no symlink there), or None."""
    if not path.name.endswith(".zarr") or path.is_symlink() or path.exists():
        return None
    body = read_local(path.parent, path.name.removesuffix(".zarr"))
    return path.parent / body["path"] if body else None

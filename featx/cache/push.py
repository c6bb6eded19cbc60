"""`featx cache push`: publish a local cache (or one store) to an object store, pointer last.

For each store, the version its pointer names is uploaded object by object under the same
relative path (``<dataset>/<backbone>/<key>.versions/vNNNN.zarr/...``); only then is the
pointer document ``<key>.pointer.json`` (featx.cache.pointer) uploaded, so a reader of the
bucket sees either the previous version or the whole new one, never part of one. Every
object of a version is immutable, so a re-run after an interruption skips the objects
already there (same name, same size) and uploads the rest; an object store never shows a
half-written object. Works with any fsspec URL (``s3://``, ``gs://``, ``file://``...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from featx.cache.pointer import document, parse, pointer_name
from featx.cache.store import PUBLISHED_SUFFIX, StoreError
from featx.cache.versions import Versions, version_folders, version_relpath

BATCH = 64  # objects uploaded concurrently per call


@dataclass(frozen=True)
class Pushed:
    """What pushing one store did."""

    store: str  # <dataset>/<backbone>/<key>
    version: int
    uploaded: int
    skipped: int  # already there (a resumed push, or an unchanged version)
    bytes_uploaded: int
    state: str  # "published", "up to date", or "remote is newer (left alone)"


def stores_to_push(source: Path) -> Iterator[tuple[Versions, str]]:
    """Each store under ``source`` (a cache root, or one store's ``<key>.zarr``) with its path relative to the root."""
    source = source.expanduser().absolute()
    if source.name.endswith(PUBLISHED_SUFFIX):
        versions = Versions.of(source)
        if versions.current() is None:
            raise StoreError(f"{source}: not a published store; give a <key>.zarr pointer or a cache root")
        yield versions, f"{versions.folder.parent.name}/{versions.folder.name}"
        return
    if not source.is_dir():
        raise StoreError(f"{source}: no such cache folder; give a cache root or a <key>.zarr pointer")
    for versions in version_folders(source.resolve()):
        if versions.current() is not None:
            yield versions, str(versions.folder.relative_to(source.resolve()))


def _remote_version(filesystem, url: str) -> int | None:
    """The version the pointer document at ``url`` names, or None where there is none."""
    try:
        return int(parse(filesystem.cat_file(url), url)["version"])
    except FileNotFoundError:
        return None


def push_store(
    versions: Versions, relative: str, destination: str, *, batch: int = BATCH,
    on_batch: Callable[[int, int], None] | None = None,
) -> Pushed:
    """Upload ``versions``' current version under ``destination/relative``, then its pointer document.

    ``on_batch(done, total)`` is called after each batch of uploads (progress).
    """
    import fsspec

    number = versions.current()
    if number is None:
        raise StoreError(f"{versions.pointer}: nothing published to push")
    filesystem, root = fsspec.core.url_to_fs(destination.rstrip("/"))
    folder = f"{root}/{relative}".rstrip("/")
    pointer_url = f"{folder}/{pointer_name(versions.key)}"
    remote = _remote_version(filesystem, pointer_url)
    if remote is not None and remote > number:
        return Pushed(f"{relative}/{versions.key}", number, 0, 0, 0, f"remote is newer (v{remote:04d}; left alone)")
    local = versions.path(number)
    remote_dir = f"{folder}/{version_relpath(versions.key, number, versions.suffix)}"
    try:
        there = {info["name"]: int(info["size"]) for info in filesystem.find(remote_dir, detail=True).values()}
    except FileNotFoundError:
        there = {}
    files = sorted((p for p in local.rglob("*") if p.is_file()), key=lambda p: (p.name == "zarr.json", str(p)))
    todo = [(p, f"{remote_dir}/{p.relative_to(local).as_posix()}") for p in files]
    skipped = sum(1 for p, target in todo if there.get(target) == p.stat().st_size)
    todo = [(p, target) for p, target in todo if there.get(target) != p.stat().st_size]
    done = 0
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        filesystem.put([str(p) for p, _ in chunk], [target for _, target in chunk])
        done += len(chunk)
        if on_batch is not None:
            on_batch(done, len(todo))
    sent = sum(p.stat().st_size for p, _ in todo)
    if remote == number and not todo:
        return Pushed(f"{relative}/{versions.key}", number, 0, skipped, 0, "up to date")
    filesystem.pipe_file(pointer_url, document(versions.key, number, versions.suffix))  # last: the version is whole
    return Pushed(f"{relative}/{versions.key}", number, len(todo), skipped, sent, "published")

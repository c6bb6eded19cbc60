"""What is checked when a store is opened, before anything is allocated: its metadata only.

The root ``zarr.json`` must be a featx group (a login page served with 200 or a file cut
short is named, not parsed into a traceback); every array's declared shape must agree
with the row count (featx.cache.layout); a published store's metadata must hash to its
manifest (featx.cache.manifest). Stores published before manifests existed open with a
note. All of it is a few small files, fetched a few at a time over HTTP.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from featx.cache.errors import StoreError
from featx.cache.layout import expected_arrays, layout_problems
from featx.cache.manifest import MANIFEST, ROOT, describe, differences, parse_manifest
from featx.cache.remote import StoreFiles

log = logging.getLogger(__name__)
_noted: set[str] = set()


def root_metadata(files: StoreFiles) -> dict[str, Any]:
    """The root ``zarr.json`` of a featx store, parsed; StoreError naming it if it is not one."""
    data = files.read([ROOT])[ROOT]
    if data is None:
        raise StoreError(f"{files.base}: not a feature store (no zarr.json there)")
    try:
        meta = json.loads(data)
    except ValueError:
        start = data[:64].decode(errors="replace").lstrip().lower()
        what = "an HTML page (a login or error page?)" if start.startswith(("<!doctype", "<html", "<")) else (
            "not valid JSON (cut short or damaged)")
        raise StoreError(f"{files.base}: not a featx feature store: {files.where(ROOT)} is {what}") from None
    attrs = (meta.get("attributes") or {}).get("featx") if isinstance(meta, dict) else None
    if not isinstance(attrs, dict) or meta.get("node_type") != "group":
        raise StoreError(f"{files.base}: a Zarr node but not a featx feature store (no 'featx' attributes)")
    return meta


@dataclass
class MetadataCheck:
    """What checking a store's metadata found."""

    layout: list[str] = field(default_factory=list)  # "<array>: <what>"
    edited: list[str] = field(default_factory=list)  # metadata files that differ from the manifest
    has_manifest: bool = False


def _written_chunk(metadata: bytes | None, block: int) -> str | None:
    """The key of ``written``'s chunk ``block`` (default chunk-key encoding only)."""
    try:
        encoding = json.loads(metadata or b"")["chunk_key_encoding"]
    except (ValueError, KeyError, TypeError):
        return None
    if encoding.get("name") != "default":
        return None
    separator = (encoding.get("configuration") or {}).get("separator", "/")
    return f"written/c{separator}{block}"


def check_metadata(files: StoreFiles, root: dict[str, Any] | None = None) -> MetadataCheck:
    """Check every array's metadata against the attributes, and a published store's against its manifest.

    ``root``: the parsed root ``zarr.json`` when already read.
    """
    root = root if root is not None else root_metadata(files)
    attrs = root["attributes"]["featx"]
    found = MetadataCheck()
    table: dict[str, str] = {}
    if attrs.get("complete") and MANIFEST in root["attributes"]:
        found.has_manifest = True
        try:
            table = parse_manifest(root["attributes"][MANIFEST])
        except ValueError:
            found.edited.append(MANIFEST)
    arrays = expected_arrays(attrs)
    wanted = sorted({*(name for name in table if name.endswith(ROOT)), *(f"{name}/{ROOT}" for name in arrays)})
    fetched = files.read(wanted)
    metadata = {name: fetched[f"{name}/{ROOT}"] for name in arrays}
    for name, data in fetched.items():  # arrays the manifest lists beyond the expected ones
        array = name.removesuffix(f"/{ROOT}")
        if array not in metadata and data is not None and b'"array"' in data:
            metadata[array] = data
    found.layout = layout_problems(attrs, metadata)
    if not found.layout and attrs.get("complete"):
        last = -(-int(attrs["n_rows"]) // int(attrs["block_rows"])) - 1
        chunk = _written_chunk(metadata.get("written"), last)
        if chunk is not None and not files.exists(chunk):
            found.layout.append(f"written: the last block's chunk ({chunk}) is missing, so the store holds fewer "
                                "rows than it declares")
    if table:
        found.edited += differences(table, attrs, fetched)
    return found


def refuse_bad_metadata(files: StoreFiles, root: dict[str, Any]) -> None:
    """Raise a one-sentence StoreError if the metadata disagrees with itself or with the manifest."""
    found = check_metadata(files, root)
    attrs = root["attributes"]["featx"]
    if found.layout:
        more = f" (and {len(found.layout) - 1} more)" if len(found.layout) > 1 else ""
        raise StoreError(f"{files.base}: {found.layout[0]}{more}; its metadata is damaged or was edited: run "
                         "`featx cache verify` on it, then `featx cache rm` it and re-extract")
    if found.edited:
        raise StoreError(f"{files.base}: {describe(found.edited)} changed since the store was published (the sha256 "
                         f"in its {MANIFEST} attribute differs); run `featx cache verify {files.base}`, then "
                         "`featx cache rm` it and re-extract")
    if attrs.get("complete") and not found.has_manifest and str(files.base) not in _noted:
        _noted.add(str(files.base))
        log.warning("%s: published before featx wrote manifests, so edits to its metadata cannot be detected; "
                    "re-extract it to add one", files.base)

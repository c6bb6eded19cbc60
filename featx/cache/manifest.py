"""The manifest: a sha256 of a published store's provenance and of every array's metadata.

A store's provenance (key, key inputs, weights hash, random init, preprocessing,
backbone config) lives in the ``featx`` attributes of its root ``zarr.json`` and its
layout in each array's ``zarr.json``; chunks carry their own crc32c. When a store is
published, the root attribute ``featx_manifest`` records the sha256 of the canonical
JSON of the ``featx`` attributes and of every other ``zarr.json`` file, so a published
store edited afterwards is refused when opened for reading. It finds edits, not a forger
who also rewrites the manifest: `featx cache verify` further recomputes the key from
the key inputs and compares the recorded provenance with them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from featx.cache.key import canonical_json

MANIFEST = "featx_manifest"  # root attribute beside "featx"
MANIFEST_SCHEMA = 1
ROOT = "zarr.json"
ATTRIBUTES = "featx attributes"  # the manifest's name for the root's featx attributes


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def attributes_digest(attrs: dict[str, Any]) -> str:
    """The sha256 of the canonical JSON of a store's ``featx`` attributes."""
    return sha256(canonical_json(attrs).encode())


def metadata_files(folder: Path) -> list[str]:
    """Every ``zarr.json`` under ``folder`` but the root's, relative, with ``/``."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob(ROOT) if p.parent != folder)


def build_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of the store in ``folder`` as it is on disk now."""
    attrs = json.loads((folder / ROOT).read_bytes())["attributes"]["featx"]
    table = {ATTRIBUTES: attributes_digest(attrs)}
    table.update({name: sha256((folder / name).read_bytes()) for name in metadata_files(folder)})
    return {"schema": MANIFEST_SCHEMA, "sha256": table}


def parse_manifest(manifest: Any) -> dict[str, str]:
    """The ``{file: sha256}`` table of a manifest; ValueError if it is not one."""
    table = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(table, dict) or ATTRIBUTES not in table:
        raise ValueError("not a featx manifest")
    return {str(name): str(digest) for name, digest in table.items()}


def differences(table: dict[str, str], attrs: dict[str, Any], files: dict[str, bytes | None]) -> list[str]:
    """What in ``table`` no longer hashes the same: ``featx attributes`` and metadata file names."""
    changed = [ATTRIBUTES] if table.get(ATTRIBUTES) != attributes_digest(attrs) else []
    return changed + [name for name, digest in table.items()
                      if name != ATTRIBUTES and (files.get(name) is None or sha256(files[name]) != digest)]


def describe(names: list[str]) -> str:
    """``the featx attributes (provenance and key) and features/block_1/cls/zarr.json``."""
    words = ["its featx attributes (provenance and key)" if n == ATTRIBUTES else n for n in names[:3]]
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(words) + more

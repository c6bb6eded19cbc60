"""Every array's declared shape checked against the store's row count before anything is read.

A ``zarr.json`` is a few hundred bytes that decide how much a reader allocates: an
edited or damaged one declaring 3e9 rows would make a probe allocate gigabytes before
failing. The checks here read only metadata, so they run in bounded memory.
"""

from __future__ import annotations

import json
import math
from typing import Any

from featx.datasets.index import COLUMNS

MAX_ROWS = 100_000_000  # far above any dataset featx serves; a larger declared count is damage
MAX_ROW_ELEMENTS = 2**28  # elements of one row of one array (a 73x73x1024 patch grid is 2**22.3)
MAX_METADATA_BYTES = 2**20


def expected_arrays(attrs: dict[str, Any]) -> list[str]:
    """The arrays a store with these attributes was laid out with (featx.cache.store.FeatureStore.create)."""
    names = [f"index/{column}" for column in COLUMNS] + ["index/stamp", "written", "failed", "error"]
    if attrs.get("label_names") and attrs.get("task") != "segmentation":
        names.append("labels")
    grid = attrs.get("patch_grid") or {}
    for layer in attrs.get("layers") or []:
        names += [f"features/{layer}/cls", f"features/{layer}/pooled"]
        if layer in grid:
            names.append(f"features/{layer}/patch")
            if attrs.get("patch_format") == "int8":
                names.append(f"features/{layer}/patch_scale")
    if attrs.get("mask_size") is not None:
        names.append("masks")
    return names


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def row_shape(name: str, attrs: dict[str, Any]) -> tuple[int, ...] | None:
    """The shape of one row of array ``name`` as the attributes imply it (None: not implied)."""
    parts = name.split("/")
    dims = attrs.get("feature_dims") or {}
    if parts[0] == "index" or name in ("written", "failed", "error"):
        return ()
    if name == "labels":
        return (len(attrs.get("label_names") or []),)
    if name == "masks" and _int(attrs.get("mask_size")) is not None:
        return (attrs["mask_size"], attrs["mask_size"])
    if parts[0] == "features" and len(parts) == 3 and parts[1] in dims:
        layer, kind = parts[1], parts[2]
        grid = (attrs.get("patch_grid") or {}).get(layer) or []
        if kind in ("cls", "pooled"):
            return (dims[layer],)
        if kind == "patch" and len(grid) == 2:
            return (grid[0], grid[1], dims[layer])
        if kind == "patch_scale" and len(grid) == 2:
            return (grid[0], grid[1])
    return None


def layout_problems(attrs: dict[str, Any], metadata: dict[str, bytes | None]) -> list[str]:
    """What is wrong with the row count, the block size and each array's ``zarr.json`` (``metadata``,
    keyed by array name), each as ``<array>: <what>``; empty when the layout holds."""
    n_rows, block_rows = _int(attrs.get("n_rows")), _int(attrs.get("block_rows"))
    if n_rows is None or not 1 <= n_rows <= MAX_ROWS:
        return [f"n_rows: {attrs.get('n_rows')!r} is not a row count between 1 and {MAX_ROWS:,}"]
    if block_rows is None or not 1 <= block_rows <= n_rows:
        return [f"block_rows: {attrs.get('block_rows')!r} is not a block size between 1 and n_rows ({n_rows})"]
    problems = []
    for name, data in metadata.items():
        if data is None:
            problems.append(f"{name}: missing (no zarr.json)")
            continue
        if len(data) > MAX_METADATA_BYTES:
            problems.append(f"{name}: its zarr.json is {len(data):,} bytes, not array metadata")
            continue
        try:
            meta = json.loads(data)
            shape = [int(s) for s in meta["shape"]]
            chunk = int(meta["chunk_grid"]["configuration"]["chunk_shape"][0])
        except (ValueError, KeyError, TypeError, IndexError):
            problems.append(f"{name}: its zarr.json is not valid array metadata (cut short or edited)")
            continue
        if not shape or shape[0] != n_rows:
            declared = f"{shape[0]:,} rows" if shape else "no rows"
            problems.append(f"{name}: declares {declared}, the store has {n_rows:,}")
            continue
        if chunk != block_rows:
            problems.append(f"{name}: chunked by {chunk:,} rows, the store's blocks are {block_rows:,}")
            continue
        expected = row_shape(name, attrs)
        if expected is not None and tuple(shape[1:]) != expected:
            problems.append(f"{name}: declares rows of shape {tuple(shape[1:])}, the store's attributes say {expected}")
        elif any(s < 0 for s in shape) or math.prod(shape[1:]) > MAX_ROW_ELEMENTS:
            problems.append(f"{name}: declares rows of shape {tuple(shape[1:])}, beyond any featx store")
    return problems

"""`featx cache verify`: check a store's metadata and provenance, read every chunk, name what is damaged.

First the metadata (featx.cache.integrity): every array's shape against the row count,
and a published store's metadata against the manifest written when it was published;
then the provenance (featx.cache.provenance): the key recomputed from its inputs, the
folder's name, the recorded weights, random init, preprocessing and backbone config
against the key inputs; and no patient in two splits. Then every chunk: every chunk carries a crc32c checksum (format 2) and every chunk of a written block
exists (empty chunks are written too), so three kinds of damage can be told apart
from "nothing there yet": a chunk whose bytes fail their checksum, a chunk that is
missing, and a written, readable row whose features are not finite. Works on a local
folder and on a store URL alike (over HTTP a missing chunk is a 404).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec
from zarr.core.sync import sync

from featx.cache.errors import DamagedStoreError
from featx.cache.integrity import check_metadata
from featx.cache.manifest import MANIFEST, describe
from featx.cache.provenance import provenance_problems
from featx.cache.remote import StoreFiles
from featx.cache.store import PUBLISHED_SUFFIX, FeatureStore
from featx.datasets.index import DatasetError, check_patient_level

ROW_ARRAYS_ALWAYS_WRITTEN = ("index/", "labels")  # laid out whole when the store is created


@dataclass(frozen=True)
class Damage:
    """One damaged chunk (storage object) of one array, with the rows it holds."""

    array: str
    chunk: str
    rows: tuple[int, int]  # first row, one past the last
    problem: str

    def __str__(self) -> str:
        return f"{self.array} chunk {self.chunk} (rows {self.rows[0]}-{self.rows[1] - 1}): {self.problem}"


@dataclass
class Verification:
    """What verifying one store found."""

    store: str
    chunks_read: int = 0
    damage: list[Damage] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # arrays stored without checksums
    problems: list[str] = field(default_factory=list)  # metadata, provenance and split problems
    notes: list[str] = field(default_factory=list)  # worth saying, not damage

    @property
    def ok(self) -> bool:
        return not self.damage and not self.problems


def _arrays(group: zarr.Group) -> Iterator[tuple[str, zarr.Array]]:
    for name, member in sorted(group.members(max_depth=None), key=lambda m: m[0]):
        if isinstance(member, zarr.Array):
            yield name, member


def _units(array: zarr.Array) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Each storage object (a chunk, or a shard) of ``array``: its grid coordinates and region."""
    unit = array.metadata.chunk_grid.chunk_shape
    grid = [range(math.ceil(s / u)) for s, u in zip(array.shape, unit)]
    for coords in itertools.product(*grid):
        yield coords, tuple(slice(c * u, min((c + 1) * u, s)) for c, u, s in zip(coords, unit, array.shape))


def verify_store(store: FeatureStore) -> Verification:
    """Check ``store``'s metadata and provenance, read every chunk; list each problem and damaged chunk.

    Open it with ``FeatureStore.open(path, allow_partial=True, check=False)``: verify reports
    what opening for reading would refuse.
    """
    report = Verification(str(store.path))
    metadata = check_metadata(StoreFiles(store.path))
    report.problems += metadata.layout
    if metadata.layout:
        return report  # shapes that disagree: reading the chunks could allocate without bound
    if metadata.edited:
        report.problems.append(f"{describe(metadata.edited)} changed since it was published (the sha256 in its "
                               f"{MANIFEST} attribute differs)")
    elif store.is_complete and not metadata.has_manifest:
        report.notes.append("published before featx wrote manifests: edits to its metadata cannot be detected")
    report.problems += provenance_problems(store.attrs, store.path)
    try:
        check_patient_level(store.index)
    except DatasetError as error:
        report.problems.append(str(error))
    except DamagedStoreError:
        pass  # a damaged index chunk: named with the chunks below
    try:
        written = np.asarray(store.group["written"][:])
    except ValueError:
        written = np.ones(store.n_rows, dtype=bool)  # 'written' itself is damaged (reported below)
    if store.is_complete:
        written = np.ones(store.n_rows, dtype=bool)  # a published store has every row written
    try:
        failed = np.asarray(store.group["failed"][:])
    except ValueError:
        failed = np.zeros(store.n_rows, dtype=bool)
    valid = written & ~failed
    for name, array in _arrays(store.group):
        if not any(isinstance(codec, Crc32cCodec) for codec in array.compressors):
            report.unchecked.append(name)
        always = name.startswith(ROW_ARRAYS_ALWAYS_WRITTEN)
        for coords, region in _units(array):
            rows = (region[0].start, region[0].stop)
            if not always and not written[region[0]].all():
                continue  # a block still to be written: nothing to check yet
            key = array.metadata.encode_chunk_key(coords)
            report.chunks_read += 1
            if not sync((array.store_path / key).exists()):
                report.damage.append(Damage(name, key, rows, "missing"))
                continue
            try:
                data = np.asarray(array[region])
            except ValueError as exc:
                problem = "fails its crc32c checksum" if "checksum" in str(exc) else f"unreadable ({exc})"
                report.damage.append(Damage(name, key, rows, problem))
                continue
            if name.startswith("features/"):
                bad = valid[region[0]] & ~np.isfinite(data.reshape(len(data), -1)).all(axis=1)
                if bad.any():
                    first = rows[0] + int(np.argmax(bad))
                    report.damage.append(
                        Damage(name, key, rows, f"{int(bad.sum())} written rows are not finite (first: row {first})")
                    )
    return report


def stores_under(target: str | Path) -> list[str | Path]:
    """``target`` itself if it is a store (folder or URL), else every published store under a cache root."""
    if isinstance(target, str) and "://" in target:
        return [target]
    path = Path(target).expanduser().resolve()
    if (path / "zarr.json").exists():
        return [path]
    return sorted(path.glob(f"*/*/*{PUBLISHED_SUFFIX}"))

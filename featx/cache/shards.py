"""Rows of featx's sharded per-row arrays, read straight from their local shard files.

Patch tokens, masks and pixel planes are stored one row per inner chunk, one block of
rows per shard (``chunks=(1, ...)``, ``shards=(block_rows, ...)``, docs/cache-format.md).
zarr-python's generic read path costs about a millisecond per inner chunk on this
layout (an event-loop hop, a thread hop and a codec pipeline per chunk), which is what
capped a decoder trained from the store at a third of one trained from memory. This
module reads exactly that layout and nothing else: the shard index (its crc32c
checked) once per shard file, then for each row one ``pread`` of its bytes, the
crc32c check and the zstd decode. It returns what zarr returns, fill value included
for a row that was never written, and raises :class:`ShardChecksumError` where zarr
would report a checksum mismatch.

:func:`shard_rows` says whether an array has that layout on a local store; anything
else (an HTTP store, another codec chain, an array from another tool) returns None
and is read through zarr. ``tests/cache/test_shards.py`` checks the two agree.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np
import zarr
from numcodecs import Zstd
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import LocalStore

EMPTY = 2**64 - 1  # an index entry of a chunk that was never written
INDEX_ENTRY_BYTES = 16  # offset and length, two little-endian uint64
CRC_BYTES = 4
_ZSTD = Zstd()


class ShardChecksumError(ValueError):
    """A shard index or an inner chunk fails its crc32c checksum, or the shard file is truncated."""


@dataclass(frozen=True)
class ShardRows:
    """How to read rows of one local sharded array: one row per inner chunk, rows sharded by block."""

    folder: Path
    shape: tuple[int, ...]
    shard_rows: int
    dtype: np.dtype
    fill_value: object
    compressed: bool
    chunk_crc: bool
    separator: str

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def shard_file(self, shard: int) -> Path:
        parts = ["c", str(shard)] + ["0"] * (len(self.shape) - 1)
        return self.folder / self.separator.join(parts)

    def read(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), *row_shape)`` values of ``rows``, in the order given."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, *self.row_shape), dtype=self.dtype)
        if rows.size and (rows.min() < 0 or rows.max() >= self.shape[0]):
            raise IndexError(f"{self.folder}: rows out of range 0..{self.shape[0] - 1}")
        shards = rows // self.shard_rows
        for shard in np.unique(shards):
            at = np.flatnonzero(shards == shard)
            self._read_shard(int(shard), rows[at] - int(shard) * self.shard_rows, out, at)
        return out

    def _read_shard(self, shard: int, local: np.ndarray, out: np.ndarray, at: np.ndarray) -> None:
        path = self.shard_file(shard)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            out[at] = self.fill_value  # a shard never written reads as fill value, as in zarr
            return
        try:
            index = self._index(fd, path)
            for row, target in zip(local, at):
                offset, length = index[row]
                if offset == EMPTY:
                    out[target] = self.fill_value
                    continue
                raw = os.pread(fd, int(length), int(offset))
                if len(raw) != int(length):
                    raise ShardChecksumError(f"{path}: the shard file is truncated (a chunk runs past its end)")
                out[target] = self._decode(raw, path)
        finally:
            os.close(fd)

    def _index(self, fd: int, path: Path) -> np.ndarray:
        stat = os.fstat(fd)
        cache_key = (str(path), stat.st_mtime_ns, stat.st_size)
        with _INDEX_LOCK:
            cached = _INDEX_CACHE.get(cache_key)
        if cached is not None:
            return cached
        size = self.shard_rows * INDEX_ENTRY_BYTES + CRC_BYTES
        if stat.st_size < size:
            raise ShardChecksumError(f"{path}: the shard file is truncated (shorter than its index)")
        raw = os.pread(fd, size, stat.st_size - size)
        if len(raw) != size or _crc(raw[:-CRC_BYTES]) != raw[-CRC_BYTES:]:
            raise ShardChecksumError(f"{path}: the shard index fails its crc32c checksum")
        index = np.frombuffer(raw[:-CRC_BYTES], dtype="<u8").reshape(self.shard_rows, 2)
        with _INDEX_LOCK:
            if len(_INDEX_CACHE) >= 1024:  # a few MiB at most
                _INDEX_CACHE.clear()
            _INDEX_CACHE[cache_key] = index
        return index

    def _decode(self, raw: bytes, path: Path) -> np.ndarray:
        if self.chunk_crc:
            if _crc(raw[:-CRC_BYTES]) != raw[-CRC_BYTES:]:
                raise ShardChecksumError(f"{path}: a chunk fails its crc32c checksum")
            raw = raw[:-CRC_BYTES]
        if self.compressed:
            raw = _ZSTD.decode(raw)
        return np.frombuffer(raw, dtype=self.dtype).reshape(self.row_shape)


_INDEX_CACHE: dict[tuple[str, int, int], np.ndarray] = {}
_INDEX_LOCK = threading.Lock()


def _crc(data: bytes) -> bytes:
    return np.uint32(google_crc32c.value(data)).tobytes()  # little-endian, as zarr's crc32c codec appends it


def shard_rows(array: zarr.Array) -> ShardRows | None:
    """The direct reader of ``array`` if it has featx's per-row sharded layout on a local store, else None."""
    store = array.store
    meta = array.metadata
    if not isinstance(store, LocalStore) or getattr(meta, "zarr_format", None) != 3 or len(meta.codecs) != 1:
        return None
    sharding = meta.codecs[0]
    encoding = meta.chunk_key_encoding
    if not isinstance(sharding, ShardingCodec) or not isinstance(encoding, DefaultChunkKeyEncoding):
        return None
    shard_shape = tuple(meta.chunk_grid.chunk_shape)
    if sharding.chunk_shape != (1, *meta.shape[1:]) or shard_shape != (shard_shape[0], *meta.shape[1:]):
        return None
    if sharding.index_location != ShardingCodecIndexLocation.end or not _is_index_chain(sharding.index_codecs):
        return None
    chain = _inner_chain(sharding.codecs, np.dtype(meta.data_type.to_native_dtype()))
    if chain is None:
        return None
    compressed, chunk_crc = chain
    dtype = np.dtype(meta.data_type.to_native_dtype()).newbyteorder("<")
    return ShardRows(
        folder=Path(store.root) / array.path, shape=tuple(meta.shape), shard_rows=int(shard_shape[0]), dtype=dtype,
        fill_value=meta.fill_value, compressed=compressed, chunk_crc=chunk_crc, separator=encoding.separator,
    )


def _is_index_chain(codecs: tuple) -> bool:
    return (len(codecs) == 2 and isinstance(codecs[0], BytesCodec) and _little(codecs[0])
            and isinstance(codecs[1], Crc32cCodec))


def _inner_chain(codecs: tuple, dtype: np.dtype) -> tuple[bool, bool] | None:
    """(zstd, crc32c) for a chain of bytes [-> zstd] [-> crc32c]; None for anything else."""
    if not codecs or not isinstance(codecs[0], BytesCodec) or (dtype.itemsize > 1 and not _little(codecs[0])):
        return None
    rest = list(codecs[1:])
    compressed = bool(rest) and isinstance(rest[0], ZstdCodec)
    if compressed:
        if rest[0].checksum:
            return None
        rest.pop(0)
    chunk_crc = bool(rest) and isinstance(rest[0], Crc32cCodec)
    if chunk_crc:
        rest.pop(0)
    return None if rest else (compressed, chunk_crc)


def _little(codec: BytesCodec) -> bool:
    return codec.endian is None or codec.endian.value == "little"

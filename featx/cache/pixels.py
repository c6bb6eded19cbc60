"""The pixel store: decoded, oriented, windowed and resized images, once per (dataset, size, intensity).

A plain Zarr v3 group beside the feature stores (layout in docs/cache-format.md):
``images`` ``(N, S, S)`` uint8 (or uint16) grey planes exactly as the backbone sees
them before its mean/std (replicated to 3 channels); colour sources keep their 3
channels in ``colour`` ``(N, 3, S, S)``, whose chunks are written only for colour rows
(``channels`` says 3 for those, 1 for grey rows, whose ``images`` plane is all there
is; a colour row's ``images`` plane is the mean of its channels, for grey-only
readers). ``masks`` sit beside them for segmentation, and the same sample
index, stamps, ``written`` / ``failed`` / ``error`` rows as a feature store. Rows are
grouped in blocks, each block is one shard written whole by one writer and then
marked written, so a killed build resumes and ends bit-identical; a store is built
under ``<key>.pixels.partial`` and published by an atomic rename to ``<key>.pixels``.
Every backbone, the fine-tuning stage and any image-aware decoder read it instead of
decoding raw files again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from featx import __version__
from featx.cache.key import canonical_json
from featx.cache.store import BlockRows, StoreError, chunk_codecs, create_array, select_rows
from featx.datasets.index import COLUMNS, SampleIndex

PIXEL_SCHEMA = 2  # 2: colour rows keep their 3 channels
PIXELS_SUFFIX = ".pixels"
PIXELS_PARTIAL_SUFFIX = ".pixels.partial"
ATTRS = "featx_pixels"  # not "featx": a pixel store is never mistaken for a feature store
SHARD_BYTES = 64 * 2**20
CHUNK_BYTES = 512 * 2**10


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def pixel_key(dataset: str, preprocessing: Mapping[str, Any], bits: int) -> tuple[str, dict[str, Any]]:
    """The key of a pixel store and the inputs it hashes: dataset, full preprocessing config, bit depth."""
    inputs = {"kind": "pixels", "schema": PIXEL_SCHEMA, "dataset": dataset, "preprocessing": dict(preprocessing),
              "bits": int(bits)}
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()[:16], inputs


def pixel_dir(cache_root: str | Path, dataset: str) -> Path:
    """The folder holding every pixel store of one dataset: ``<cache>/<dataset>/_pixels``."""
    safe = dataset.replace("/", "_").replace(os.sep, "_")
    return Path(cache_root).expanduser().resolve() / safe / "_pixels"


def pixel_paths(cache_root: str | Path, dataset: str, key: str) -> tuple[Path, Path]:
    """(published, partial) paths of the pixel store with ``key``."""
    folder = pixel_dir(cache_root, dataset)
    return folder / f"{key}{PIXELS_SUFFIX}", folder / f"{key}{PIXELS_PARTIAL_SUFFIX}"


def pixel_layout(size: int, bits: int) -> tuple[int, int]:
    """(rows per inner chunk, rows per block = shard): chunks near 0.5 MiB (<= 64 rows), shards near 64 MiB."""
    plane = size * size * (2 if bits == 16 else 1)
    chunk = max(1, min(64, CHUNK_BYTES // plane))
    block = max(chunk, min(1024, SHARD_BYTES // plane))
    return chunk, block - block % chunk


class PixelStore(BlockRows):
    """A pixel store on disk: sample index, labels, images, masks and per-row state."""

    def __init__(self, path: Path, group: zarr.Group) -> None:
        self.path = path
        self.group = group

    # ---- creation and opening -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        key: str,
        key_inputs: Mapping[str, Any],
        index: SampleIndex,
        stamps: np.ndarray,
        size: int,
        bits: int = 8,
        block_rows: int | None = None,
        with_masks: bool = False,
    ) -> PixelStore:
        """Lay out an empty pixel store for ``index`` at ``path`` (a ``.pixels.partial`` folder)."""
        path = Path(path)
        if bits not in (8, 16):
            raise StoreError(f"pixel bit depth {bits}: use 8 or 16")
        if path.exists():
            raise StoreError(f"{path}: already exists; open it instead of creating it")
        n = len(index)
        if n == 0:
            raise StoreError(f"{index.dataset}: no samples to store")
        chunk, default_block = pixel_layout(size, bits)
        rows = block_rows or default_block
        chunk = min(chunk, rows)
        rows -= rows % chunk  # a shard holds whole inner chunks
        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        for column, dtype in COLUMNS.items():
            values = index.table[column].to_numpy()
            array = create_array(group, f"index/{column}", shape=(n,), chunks=(rows,),
                                 dtype=np.int64 if dtype == "int64" else str)
            array[:] = values.astype(np.int64) if dtype == "int64" else values.astype(str)
        create_array(group, "index/stamp", shape=(n,), chunks=(rows,), dtype=str)[:] = np.asarray(stamps).astype(str)
        if index.labels.shape[1]:
            labels = create_array(group, "labels", shape=index.labels.shape, chunks=(rows, index.labels.shape[1]),
                                  dtype=np.float32, fill_value=np.nan)
            labels[:] = index.labels
        for name, dtype in (("written", bool), ("failed", bool)):
            create_array(group, name, shape=(n,), chunks=(rows,), dtype=dtype, fill_value=False)
        create_array(group, "error", shape=(n,), chunks=(rows,), dtype=str)
        planes = [("images", np.uint16 if bits == 16 else np.uint8)] + ([("masks", np.uint8)] if with_masks else [])
        for name, dtype in planes:
            create_array(group, name, shape=(n, size, size), chunks=(chunk, size, size), shards=(rows, size, size),
                         dtype=dtype, fill_value=0, dimension_names=("sample", "y", "x"))
        create_array(group, "channels", shape=(n,), chunks=(rows,), dtype=np.uint8, fill_value=1)
        group.create_array("colour", shape=(n, 3, size, size), chunks=(chunk, 3, size, size),
                           shards=(rows, 3, size, size), dtype=planes[0][1], fill_value=0,
                           dimension_names=("sample", "channel", "y", "x"), compressors=chunk_codecs(),
                           config={"write_empty_chunks": False})  # grey rows cost nothing here
        group.attrs[ATTRS] = {
            "schema": PIXEL_SCHEMA, "key": key, "key_inputs": dict(key_inputs), "dataset": index.dataset,
            "task": index.task, "modality": index.modality, "label_names": list(index.label_names),
            "size": size, "bits": bits, "block_rows": rows, "n_rows": n, "masks": with_masks,
            "problems": [str(p) for p in index.problems], "featx_version": __version__, "created": _utc_now(),
            "complete": False,
        }
        return cls(path, group)

    @classmethod
    def open(cls, path: str | Path, *, writable: bool = False, allow_partial: bool = False) -> PixelStore:
        """Open a pixel store; only published ones unless ``allow_partial``."""
        path = Path(path).expanduser().resolve()
        if not (path / "zarr.json").exists():
            raise StoreError(f"{path}: not a pixel store (no zarr.json)")
        if path.name.endswith(PIXELS_PARTIAL_SUFFIX) and not allow_partial:
            raise StoreError(f"{path}: an unfinished pixel-store build; re-run `featx extract` to complete it")
        group = zarr.open_group(str(path), mode="r+" if writable else "r", zarr_format=3)
        if ATTRS not in group.attrs:
            raise StoreError(f"{path}: a Zarr group but not a featx pixel store (no {ATTRS!r} attributes)")
        return cls(path, group)

    @classmethod
    def open_key(
        cls, cache_root: str | Path, dataset: str, preprocessing: Mapping[str, Any], bits: int = 8
    ) -> PixelStore:
        """The published pixel store of (dataset, preprocessing, bits) under ``cache_root``."""
        key, _ = pixel_key(dataset, preprocessing, bits)
        final, _ = pixel_paths(cache_root, dataset, key)
        if not final.exists():
            raise StoreError(f"{final}: no pixel store for dataset {dataset!r} with this preprocessing; "
                             "run `featx extract` (or build_pixel_store) first")
        return cls.open(final)

    # ---- metadata ---------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs[ATTRS])

    @property
    def size(self) -> int:
        return int(self.attrs["size"])

    @property
    def bits(self) -> int:
        return int(self.attrs["bits"])

    @property
    def has_masks(self) -> bool:
        return "masks" in self.group

    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing config the images were made with (as in the key)."""
        return dict(self.attrs["key_inputs"]["preprocessing"])

    # ---- rows -------------------------------------------------------------------------------
    @property
    def index(self) -> pd.DataFrame:
        return pd.DataFrame({column: self.group[f"index/{column}"][:] for column in COLUMNS})

    @property
    def written(self) -> np.ndarray:
        return np.asarray(self.group["written"][:])

    @property
    def failed(self) -> np.ndarray:
        return np.asarray(self.group["failed"][:])

    @property
    def errors(self) -> np.ndarray:
        return np.asarray(self.group["error"][:])

    @property
    def valid(self) -> np.ndarray:
        return self.written & ~self.failed

    def failures(self) -> pd.DataFrame:
        """The rows whose raw file could not be decoded, with the reason."""
        rows = np.flatnonzero(self.failed)
        return pd.DataFrame({"row": rows, "source": self.group["index/source"][:][rows], "error": self.errors[rows]})

    @property
    def channels(self) -> np.ndarray:
        """Per row: 3 for a colour image (its channels are in ``colour``), 1 for grey."""
        return np.asarray(self.group["channels"][:])

    @property
    def has_colour(self) -> bool:
        """Whether any row is a colour image (then :meth:`read_colour` is what the backbone sees)."""
        if not hasattr(self, "_has_colour"):
            self._has_colour = bool((self.channels == 3).any())
        return self._has_colour

    # ---- pixels -----------------------------------------------------------------------------
    def read_images(self, rows: np.ndarray | slice) -> np.ndarray:
        """``(n, S, S)`` uint8/uint16 grey planes of ``rows`` (a slice reads whole shards contiguously)."""
        return select_rows(self.group["images"], rows)

    def colour_channels(self, rows: np.ndarray | slice) -> np.ndarray | None:
        """``(n, 3, S, S)`` channels of the colour images among ``rows`` (zeros for grey rows); None if none is."""
        if not self.has_colour:
            return None
        picked = np.arange(self.n_rows)[rows] if isinstance(rows, slice) else np.asarray(rows)
        colour = np.flatnonzero(self.channels[picked] == 3)
        if not len(colour):
            return None
        out = np.zeros((len(picked), 3, self.size, self.size), np.uint16 if self.bits == 16 else np.uint8)
        out[colour] = select_rows(self.group["colour"], picked[colour])
        return out

    def read_colour(self, rows: np.ndarray | slice) -> np.ndarray:
        """``(n, 3, S, S)`` images of ``rows`` as the backbone sees them: grey planes replicated, colour kept."""
        out = np.repeat(self.read_images(rows)[:, None], 3, axis=1)
        channels = self.colour_channels(rows)
        if channels is not None:
            is_colour = channels.reshape(len(out), -1).any(axis=1)
            out[is_colour] = channels[is_colour]
        return out

    def read_masks(self, rows: np.ndarray | slice) -> np.ndarray:
        """``(n, S, S)`` uint8 class-id masks of ``rows``."""
        if not self.has_masks:
            raise StoreError(f"{self.path}: no masks stored (not a segmentation dataset)")
        return select_rows(self.group["masks"], rows)

    def write_block(self, block: int, images: np.ndarray, masks: np.ndarray | None, errors: list[str],
                    colour: np.ndarray | None = None) -> None:
        """Write one whole block (failed rows: zeros and their error), then mark its rows written.

        ``colour``: ``(n, 3, S, S)`` channels of the block's colour rows (all zero for grey rows), or None.
        """
        rows = self.block_slice(block)
        n = rows.stop - rows.start
        if images.shape[0] != n or len(errors) != n:
            raise StoreError(f"block {block}: expected {n} rows, got {images.shape[0]} images / {len(errors)} errors")
        self.group["images"][rows] = images
        is_colour = colour.reshape(n, -1).any(axis=1) if colour is not None else np.zeros(n, bool)
        if is_colour.any():
            self.group["colour"][rows] = colour
        self.group["channels"][rows] = np.where(is_colour, 3, 1).astype(np.uint8)
        if self.has_masks:
            self.group["masks"][rows] = masks if masks is not None else np.zeros_like(images, dtype=np.uint8)
        self.group["failed"][rows] = np.array([bool(e) for e in errors])
        self.group["error"][rows] = np.asarray(errors, dtype=str)
        self.group["written"][rows] = True

    def publish(self) -> Path:
        """Mark a fully written partial store complete and rename it into place atomically."""
        if not self.path.name.endswith(PIXELS_PARTIAL_SUFFIX):
            raise StoreError(f"{self.path}: only a .pixels.partial store can be published")
        pending = self.pending_blocks()
        if pending:
            raise StoreError(f"{self.path}: {len(pending)} blocks are not written yet; cannot publish")
        attrs = self.attrs
        attrs.update({"complete": True, "completed": _utc_now(), "n_failed": int(self.failed.sum())})
        self.group.attrs[ATTRS] = attrs
        final = self.path.with_name(self.path.name.removesuffix(PIXELS_PARTIAL_SUFFIX) + PIXELS_SUFFIX)
        if final.exists():  # an older build of this key over other samples: swap it out
            retired = final.with_name(final.name + f".retired-{os.getpid()}")
            os.rename(final, retired)
            os.rename(self.path, final)
            shutil.rmtree(retired)
        else:
            os.rename(self.path, final)
        return final

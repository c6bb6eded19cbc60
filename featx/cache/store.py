"""The feature store: one Zarr v3 group per cache key (layout in docs/cache-format.md).

Rows are grouped into fixed *blocks* of ``block_rows`` samples. Every per-row array
is chunked (or sharded) by exactly one block, and a block is always written whole
by one writer, so two writers never share a chunk or shard and a killed write never
tears a block that is already marked written. The ``written`` mask is set after a
block's data, which is what makes a resumed extraction end identical to an
uninterrupted one. A store is built under ``<key>.zarr.partial`` and published as an
immutable version behind the pointer ``<key>.zarr`` (featx.cache.versions).
"""

from __future__ import annotations

import datetime as dt
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from featx import __version__
from featx.cache.errors import DamagedStoreError, StoreError
from featx.cache.integrity import refuse_bad_metadata, root_metadata
from featx.cache.key import SCHEMA_VERSION
from featx.cache.manifest import MANIFEST, build_manifest
from featx.cache.pointer import resolve_local, resolve_url
from featx.cache.remote import StoreFiles, zarr_store
from featx.cache.shards import ShardChecksumError, ShardRows, shard_rows
from featx.cache.versions import Versions, hold_for_reading, version_relpath
from featx.datasets.index import COLUMNS, DatasetError, SampleIndex, check_patient_level

PUBLISHED_SUFFIX = ".zarr"
PARTIAL_SUFFIX = ".zarr.partial"
FEATURE_KINDS = ("cls", "pooled")
PATCH_FORMATS = ("float16", "int8")  # int8: per-token absmax scale in features/<layer>/patch_scale


def encode_int8(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(..., D)`` tokens -> int8 codes and a float16 scale per token (absmax / 127)."""
    tokens = np.asarray(tokens, dtype=np.float32)
    scale = np.abs(tokens).max(axis=-1) / 127.0
    scale = scale.astype(np.float16).astype(np.float32)  # the scale as stored
    safe = np.where(scale > 0, scale, 1.0)[..., None]
    codes = np.clip(np.rint(tokens / safe), -127, 127).astype(np.int8)
    return codes, scale.astype(np.float16)


def decode_int8(codes: np.ndarray, scale: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Inverse of :func:`encode_int8` (up to the rounding)."""
    return (codes.astype(np.float32) * scale.astype(np.float32)[..., None]).astype(dtype)


def chunk_codecs(checksums: bool = True, compress: bool = True) -> tuple[Any, ...]:
    """The bytes-to-bytes codecs of every chunk: zstd (unless not ``compress``), then a crc32c of the result."""
    return ((ZstdCodec(level=0),) if compress else ()) + ((Crc32cCodec(),) if checksums else ())


def create_array(group: zarr.Group, name: str, *, checksums: bool = True, compress: bool = True,
                 **kwargs: Any) -> zarr.Array:
    """A per-row array with checksummed chunks, every chunk written (even all fill value).

    Writing empty chunks too is what lets `featx cache verify` call a missing chunk of a
    written block damage rather than "all fill value". ``compress=False`` leaves out zstd:
    float16 patch tokens, where it saves 8% and decodes 15x slower than a copy
    (docs/cache-format.md).
    """
    return group.create_array(name, compressors=chunk_codecs(checksums, compress),
                              config={"write_empty_chunks": True}, **kwargs)


def write_metadata(group: zarr.Group, metadata: pd.DataFrame, rows: int) -> None:
    """Store the index's metadata columns as string arrays ``index/meta/<name>``, in their order."""
    if metadata.shape[1] == 0:
        return
    meta = group.require_group("index/meta")
    for column in metadata.columns:
        array = create_array(meta, str(column), shape=(len(metadata),), chunks=(rows,), dtype=str)
        array[:] = metadata[column].to_numpy().astype(str)
    meta.attrs["columns"] = [str(c) for c in metadata.columns]


def read_metadata(group: zarr.Group, n_rows: int) -> pd.DataFrame:
    """The metadata columns written by :func:`write_metadata` (a frame with no columns when none)."""
    meta = group.get("index/meta")
    if meta is None:
        return pd.DataFrame(index=pd.RangeIndex(n_rows))
    columns = list(meta.attrs.get("columns", sorted(meta.array_keys())))
    return pd.DataFrame({c: select_rows(meta[c], slice(None)).astype(object) for c in columns},
                        index=pd.RangeIndex(n_rows))


def _utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def is_url(path: str | Path) -> bool:
    """Whether ``path`` names a remote store (``scheme://...``) rather than a local folder."""
    return isinstance(path, str) and "://" in path and not path.startswith("file://")


def store_dir(cache_root: str | Path, dataset: str, backbone: str) -> Path:
    """The folder holding every store of one (dataset, backbone) pair."""
    safe = [part.replace("/", "_").replace(os.sep, "_") for part in (dataset, backbone)]
    return Path(cache_root).expanduser().resolve() / safe[0] / safe[1]


def find_store(cache_root: str | Path, dataset: str, backbone: str) -> Path:
    """The most recently completed published store for (dataset, backbone)."""
    folder = store_dir(cache_root, dataset, backbone)
    candidates = sorted(folder.glob(f"*{PUBLISHED_SUFFIX}")) if folder.is_dir() else []
    if not candidates:
        root = Path(cache_root).expanduser().resolve()
        present = sorted(
            f"{p.parent.parent.name}/{p.parent.name}" for p in root.glob(f"*/*/*{PUBLISHED_SUFFIX}")
        )
        known = ", ".join(present) if present else "none"
        raise StoreError(
            f"no feature store for dataset {dataset!r} and backbone {backbone!r} under {root} "
            f"(stores there: {known}); run `featx extract` first"
        )
    return max(candidates, key=lambda p: FeatureStore.open(p).attrs.get("completed", ""))


def select_rows(array: zarr.Array, rows: np.ndarray | slice, dtype: type | None = None) -> np.ndarray:
    """Rows of a per-row array: a slice, or any row numbers (in the order given)."""
    try:
        data = array[rows] if isinstance(rows, slice) else array.get_orthogonal_selection((np.asarray(rows),))
    except ValueError as exc:
        if "checksum" not in str(exc):
            raise
        raise DamagedStoreError(
            f"{array.store_path}: a chunk fails its crc32c checksum; run `featx cache verify` on the store "
            "to find it, then re-extract"
        ) from None
    return np.asarray(data, dtype=dtype)


def row_keys(table: pd.DataFrame, stamps: np.ndarray) -> pd.Series:
    """What identifies a row's input: sample id, file, slice and the file's fingerprint."""
    keys = table[["sample_id", "source", "slice_index"]].astype(str).agg("|".join, axis=1)
    stamps = pd.Series(np.asarray(stamps).astype(object), index=keys.index, dtype=str)
    return (keys + "|" + stamps).reset_index(drop=True)


def removed_message(url: str) -> str:
    """Why a remote version's files vanished while it was read."""
    return (f"{url}: this store version was removed from the server while it was read (old versions are deleted "
            "by `featx cache gc`); open the store's pointer URL again to read its current version")


class RemoteGroup:
    """A remote store's Zarr group, where an array that vanishes mid-read is explained rather than a bare KeyError."""

    def __init__(self, group: zarr.Group, url: str) -> None:
        self._group, self._url = group, url

    def _refuse_if_removed(self) -> None:
        if not StoreFiles(self._url).exists("zarr.json"):
            raise StoreError(removed_message(self._url))

    def __getitem__(self, name: str) -> Any:
        try:
            return self._group[name]
        except KeyError:
            self._refuse_if_removed()
            raise

    def __contains__(self, name: str) -> bool:
        if name in self._group:
            return True
        self._refuse_if_removed()
        return False

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._group, attribute)


class BlockRows:
    """Rows in blocks with a sample index and per-row fingerprints: what feature and pixel stores share.

    Subclasses provide ``group``, ``attrs``, ``index``, ``written`` and ``valid``.
    """

    @property
    def key(self) -> str:
        return str(self.attrs["key"])

    @property
    def n_rows(self) -> int:
        return int(self.attrs["n_rows"])

    @property
    def block_rows(self) -> int:
        return int(self.attrs["block_rows"])

    @property
    def n_blocks(self) -> int:
        return -(-self.n_rows // self.block_rows)

    @property
    def label_names(self) -> list[str]:
        return list(self.attrs["label_names"])

    def block_slice(self, block: int) -> slice:
        """The rows of one block."""
        start = block * self.block_rows
        return slice(start, min(start + self.block_rows, self.n_rows))

    @property
    def labels(self) -> np.ndarray:
        """``(N, C)`` float32 labels (NaN = unknown); ``(N, 0)`` for segmentation."""
        if "labels" not in self.group:
            return np.zeros((self.n_rows, 0), dtype=np.float32)
        return np.asarray(self.group["labels"][:])

    def pending_blocks(self) -> list[int]:
        """Blocks not yet (completely) written."""
        written = self.written
        return [b for b in range(self.n_blocks) if not written[self.block_slice(b)].all()]

    def _row_keys(self) -> pd.Series:
        return row_keys(self.index, self.group["index/stamp"][:])

    def matches_index(self, index: SampleIndex, stamps: np.ndarray) -> bool:
        """Whether this store holds exactly the samples of ``index``, from unchanged files."""
        return len(index) == self.n_rows and self._row_keys().equals(row_keys(index.table, stamps))

    def reusable_rows(self, index: SampleIndex, stamps: np.ndarray) -> np.ndarray:
        """For each row of ``index``, the row of this store holding its features, or -1.

        A row is reused only if it was extracted successfully from the same, unchanged
        file; new, changed and previously failed samples are extracted again.
        """
        ours = pd.Series(np.arange(self.n_rows), index=self._row_keys().to_numpy())
        ours = ours[self.valid[ours.to_numpy()]]
        ours = ours[~ours.index.duplicated()]
        found = ours.reindex(row_keys(index.table, stamps).to_numpy())
        return found.fillna(-1).to_numpy(dtype=np.int64)


class FeatureStore(BlockRows):
    """A feature store on disk: its sample index, labels, features and provenance."""

    def __init__(self, path: Path | str, group: zarr.Group | RemoteGroup) -> None:
        self.path = path  # a local folder (a version's, once published), or the URL of one read remotely
        self.group = group
        self._direct: dict[str, ShardRows | None] = {}  # per-row sharded arrays read without zarr's pipeline
        self._present: dict[str, bool] = {}
        reading = hold_for_reading(path) if isinstance(path, Path) else None  # keeps gc off this version
        if reading is not None:
            weakref.finalize(self, reading.close)  # released when the store is dropped

    # ---- creation and opening -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        key: str,
        key_inputs: Mapping[str, Any],
        index: SampleIndex,
        feature_dims: Mapping[str, int],
        block_rows: int,
        stamps: np.ndarray | None = None,
        patch_grid: Mapping[str, tuple[int, ...]] | None = None,
        mask_size: int | tuple[int, ...] | None = None,
        provenance: Mapping[str, Any] | None = None,
        patch_format: str = "float16",
    ) -> FeatureStore:
        """Lay out an empty store for ``index`` at ``path`` (a ``.zarr.partial`` folder).

        ``stamps`` holds one fingerprint per row of the files it was read from (see
        featx.datasets.stamps): a later extraction reuses a row only if it is unchanged.
        Without them ("" per row) no row is ever reused. ``patch_grid`` names the layers
        that carry patch tokens (all, or some of them), stored in ``patch_format``; a 3-entry grid
        (d, h, w) stores a volume's 3D feature map. ``mask_size`` is an edge (square masks) or a shape.
        """
        if patch_format not in PATCH_FORMATS:
            raise StoreError(f"unknown patch-token format {patch_format!r}; expected one of {PATCH_FORMATS}")
        path = Path(path)
        if path.exists():
            raise StoreError(f"{path}: already exists; open it instead of creating it")
        n = len(index)
        if n == 0:
            raise StoreError(f"{index.dataset}: no samples to store")
        try:
            check_patient_level(index.table)
        except DatasetError as error:
            raise StoreError(f"{path}: {error}; re-split the index by patient before creating a store") from None
        group = zarr.open_group(str(path), mode="w-", zarr_format=3)
        rows = min(block_rows, n)
        for column, dtype in COLUMNS.items():
            values = index.table[column].to_numpy()
            stored = np.int64 if dtype == "int64" else str
            array = create_array(group, f"index/{column}", shape=(n,), chunks=(rows,), dtype=stored)
            array[:] = values.astype(np.int64) if dtype == "int64" else values.astype(str)
        stamp = create_array(group, "index/stamp", shape=(n,), chunks=(rows,), dtype=str)
        stamp[:] = np.asarray(stamps if stamps is not None else [""] * n).astype(str)
        write_metadata(group, index.metadata, rows)
        n_classes = index.labels.shape[1]
        if n_classes:
            labels = create_array(
                group, "labels", shape=(n, n_classes), chunks=(rows, n_classes), dtype=np.float32, fill_value=np.nan
            )
            labels[:] = index.labels
        create_array(group, "written", shape=(n,), chunks=(rows,), dtype=bool, fill_value=False)
        create_array(group, "failed", shape=(n,), chunks=(rows,), dtype=bool, fill_value=False)
        create_array(group, "error", shape=(n,), chunks=(rows,), dtype=str)
        for layer, dim in feature_dims.items():
            for kind in FEATURE_KINDS:
                create_array(
                    group,
                    f"features/{layer}/{kind}",
                    shape=(n, dim),
                    chunks=(rows, dim),
                    dtype=np.float16,
                    fill_value=np.nan,
                    dimension_names=("sample", "feature"),
                )
            if patch_grid is not None and layer in patch_grid:
                grid = tuple(int(g) for g in patch_grid[layer])
                axes = ("z", "y", "x")[-len(grid):]
                int8 = patch_format == "int8"
                create_array(
                    group,
                    f"features/{layer}/patch",
                    shape=(n, *grid, dim),
                    chunks=(1, *grid, dim),
                    shards=(rows, *grid, dim),
                    dtype=np.int8 if int8 else np.float16,
                    fill_value=0 if int8 else np.nan,
                    dimension_names=("sample", *axes, "feature"),
                    compress=int8,  # int8 is the compact format: zstd takes a further 4%
                )
                if int8:
                    create_array(
                        group,
                        f"features/{layer}/patch_scale",
                        shape=(n, *grid),
                        chunks=(1, *grid),
                        shards=(rows, *grid),
                        dtype=np.float16,
                        fill_value=np.nan,
                        dimension_names=("sample", *axes),
                    )
        if mask_size is not None:
            mask_shape = (mask_size, mask_size) if isinstance(mask_size, int) else tuple(int(m) for m in mask_size)
            create_array(
                group,
                "masks",
                shape=(n, *mask_shape),
                chunks=(1, *mask_shape),
                shards=(rows, *mask_shape),
                dtype=np.uint8,
                fill_value=0,
                dimension_names=("sample", *("z", "y", "x")[-len(mask_shape):]),
            )
            mask_size = mask_size if isinstance(mask_size, int) else list(mask_shape)
        group.attrs["featx"] = {
            "schema": SCHEMA_VERSION,
            "key": key,
            "key_inputs": dict(key_inputs),
            "dataset": index.dataset,
            "task": index.task,
            "modality": index.modality,
            "label_names": list(index.label_names),
            "layers": list(feature_dims),
            "feature_dims": dict(feature_dims),
            "patch_grid": {k: list(v) for k, v in patch_grid.items()} if patch_grid else None,
            "patch_format": patch_format if patch_grid else None,
            "mask_size": mask_size,
            "block_rows": rows,
            "n_rows": n,
            "featx_version": __version__,
            "created": _utc_now(),
            "complete": False,
            **dict(provenance or {}),
        }
        return cls(path, group)

    @classmethod
    def open(
        cls, path: str | Path, *, writable: bool = False, allow_partial: bool = False, check: bool = True
    ) -> FeatureStore:
        """Open a store; only published ones unless ``allow_partial``.

        ``path`` may also be a URL (``http://``, ``s3://``, ... through fsspec): a shared
        cache read over the network, read-only, fetching only the chunks a probe reads.
        A published store's pointer (``<key>.zarr``) is resolved once, here: the store keeps
        reading the version it opened while later rebuilds publish newer ones. Before any
        array is read, its metadata is checked (featx.cache.integrity): every array's shape
        against the row count, and a published store's metadata against its manifest;
        ``check=False`` skips that for `featx cache verify`, which reports it instead.
        """
        if is_url(path):
            return cls._open_remote(str(path), check)
        path = Path(path).expanduser()
        path = (resolve_local(path) or path).resolve()  # follows the pointer to the current version
        if not (path / "zarr.json").exists():
            raise StoreError(f"{path}: not a feature store (no zarr.json)")
        if path.name.endswith(PARTIAL_SUFFIX) and not allow_partial:
            raise StoreError(f"{path}: an unfinished extraction; re-run `featx extract` to complete it")
        files = StoreFiles(path)
        root = root_metadata(files)
        if check:
            refuse_bad_metadata(files, root)
        group = zarr.open_group(str(path), mode="r+" if writable else "r", zarr_format=3)
        return cls(path, group)

    @classmethod
    def _open_remote(cls, url: str, check: bool = True) -> FeatureStore:
        url = url.rstrip("/")
        if url.endswith(PARTIAL_SUFFIX):
            raise StoreError(f"{url}: an unfinished extraction; only published stores can be read remotely")
        if url.endswith(PUBLISHED_SUFFIX):
            url = resolve_url(url) or url  # the pointer document (S3 has no symlinks): pin its version now
        root = root_metadata(StoreFiles(url))
        attrs = root["attributes"]["featx"]
        name = url.rsplit("/", 1)[-1]
        if attrs.get("version") and name == f"{attrs.get('key')}{PUBLISHED_SUFFIX}":
            # a pointer: pin the version it names now, so a rebuild never changes what we read
            url = f"{url[: -len(name)]}{version_relpath(attrs['key'], int(attrs['version']))}"
            root = root_metadata(StoreFiles(url))
        if check:
            refuse_bad_metadata(StoreFiles(url), root)
        return cls(url, RemoteGroup(zarr.open_group(zarr_store(url), mode="r", zarr_format=3), url))

    # ---- metadata ---------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        """The store's featx attributes (provenance and layout)."""
        return dict(self.group.attrs["featx"])

    @property
    def task(self) -> str:
        return str(self.attrs["task"])

    @property
    def layers(self) -> list[str]:
        return list(self.attrs["layers"])

    @property
    def is_complete(self) -> bool:
        return bool(self.attrs.get("complete"))

    @property
    def dataset(self) -> str:
        """The dataset's name in the cache."""
        return str(self.attrs.get("dataset", ""))

    @property
    def backbone_name(self) -> str:
        """The backbone's registry name."""
        return str((self.attrs.get("backbone") or {}).get("name", ""))

    @property
    def feature_dims(self) -> dict[str, int]:
        """Feature width per stored layer."""
        return {layer: int(dim) for layer, dim in (self.attrs.get("feature_dims") or {}).items()}

    @property
    def patch_grid(self) -> dict[str, tuple[int, ...]]:
        """The patch-token grid (h, w), or a volume's (d, h, w), per layer that stores them (empty without them)."""
        return {layer: tuple(int(g) for g in grid) for layer, grid in (self.attrs.get("patch_grid") or {}).items()}

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The preprocessing config the pixels went through (part of the cache key)."""
        return dict(self.attrs.get("preprocessing") or {})

    def provenance(self) -> dict[str, Any]:
        """What every result computed from this store must carry."""
        attrs = self.attrs
        backbone = attrs.get("backbone", {})
        return {
            "store_key": attrs["key"],
            "store_version": attrs.get("version"),
            "store_path": str(self.path),
            "dataset": attrs["dataset"],
            "backbone": backbone.get("name"),
            "weights_hash": backbone.get("weights_hash"),
            "random_init": backbone.get("random_init"),
            "img_size": backbone.get("img_size"),
            "preprocessing": attrs.get("preprocessing"),
        }

    # ---- rows -------------------------------------------------------------------------------
    @property
    def index(self) -> pd.DataFrame:
        """The sample index, one row per stored sample."""
        table = pd.DataFrame({column: select_rows(self.group[f"index/{column}"], slice(None)) for column in COLUMNS})
        blank = np.flatnonzero(table["sample_id"].to_numpy() == "")
        if len(blank):
            raise DamagedStoreError(
                f"{self.path}: {len(blank)} rows from row {blank[0]} have no sample id (a missing index chunk); "
                "run `featx cache verify` on it and re-extract"
            )
        return table

    @property
    def metadata(self) -> pd.DataFrame:
        """The index's metadata columns (strings), aligned with :attr:`index`; no columns when none were stored."""
        return read_metadata(self.group, self.n_rows)

    @property
    def written(self) -> np.ndarray:
        return select_rows(self.group["written"], slice(None))

    @property
    def valid(self) -> np.ndarray:
        """Rows that were extracted successfully (a published store must have written every row)."""
        written = self.written
        if self.is_complete and not written.all():
            rows = np.flatnonzero(~written)
            raise DamagedStoreError(
                f"{self.path}: published, yet {len(rows)} rows from row {rows[0]} read as unwritten (a missing "
                "chunk of 'written'); run `featx cache verify` on it and re-extract"
            )
        return written & ~select_rows(self.group["failed"], slice(None))

    def refuse_damaged_rows(self, name: str, rows: np.ndarray, values: np.ndarray) -> None:
        """Raise if any of ``rows`` (valid rows) read as non-finite in ``values`` (array ``name``).

        A written, readable row is finite by construction (checked before it is stored),
        so NaN there means a lost chunk (fill value) or damage: refuse rather than score it.
        """
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad.any():
            first = int(np.asarray(rows)[np.argmax(bad)])
            if isinstance(self.group, RemoteGroup):
                self.group._refuse_if_removed()  # chunks that vanished: a removed version, not damage
            raise DamagedStoreError(
                f"{self.path}: {int(bad.sum())} rows of {name} marked written hold no finite features "
                f"(first: row {first}); run `featx cache verify` on it and re-extract"
            )

    def failures(self) -> pd.DataFrame:
        """The rows whose input could not be read, with the reason."""
        failed = np.asarray(self.group["failed"][:])
        rows = np.flatnonzero(failed)
        return pd.DataFrame(
            {
                "row": rows,
                "sample_id": self.group["index/sample_id"][:][rows],
                "source": self.group["index/source"][:][rows],
                "error": np.asarray(self.group["error"][:])[rows],
            }
        )

    # ---- features ---------------------------------------------------------------------------
    def read(self, kind: str, layer: str, rows: np.ndarray | slice | None = None) -> np.ndarray:
        """``(N, D)`` float32 CLS (``kind="cls"``) or mean-pooled patch tokens (``"pooled"``)."""
        if kind not in FEATURE_KINDS:
            raise StoreError(f"unknown feature kind {kind!r}; expected one of {FEATURE_KINDS}")
        if layer not in self.layers:
            raise StoreError(f"{self.path}: no layer {layer!r}; stored layers: {self.layers}")
        return select_rows(self.group[f"features/{layer}/{kind}"], slice(None) if rows is None else rows, np.float32)

    def read_patch(self, layer: str, rows: np.ndarray | slice, dtype: type | None = np.float32) -> np.ndarray:
        """``(n, h, w, D)`` patch tokens (volumes: ``(n, d, h, w, D)`` maps) of ``rows``, in ``dtype`` (None: float16, int8 stores decoded)."""
        name = f"features/{layer}/patch"
        if not self._has(name):
            raise StoreError(f"{self.path}: patch tokens were not stored (extract with --patch-tokens)")
        if self._has(f"{name}_scale"):
            codes, scale = self._per_row(name, rows), self._per_row(f"{name}_scale", rows)
            return decode_int8(codes, scale, dtype or np.float16)
        return self._per_row(name, rows, dtype)

    def read_rows(self, rows: np.ndarray) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray | None]:
        """Every stored feature (float16, as stored) and mask of ``rows``, for copying into a new store."""
        features = {
            layer: {
                kind: select_rows(self.group[f"features/{layer}/{kind}"], rows)
                for kind in FEATURE_KINDS
                if f"features/{layer}/{kind}" in self.group
            }
            for layer in self.layers
        }
        for layer in self.layers:
            if f"features/{layer}/patch" in self.group:  # decoded: write_block encodes again (int8 round-trips)
                features[layer]["patch"] = self.read_patch(layer, rows, dtype=None)
        return features, (self.read_masks(rows) if "masks" in self.group else None)

    def read_masks(self, rows: np.ndarray | slice) -> np.ndarray:
        """``(n, S, S)`` uint8 masks of ``rows`` at the extraction resolution (volumes: ``(n, D, H, W)``)."""
        if not self._has("masks"):
            raise StoreError(f"{self.path}: no masks stored (not a segmentation dataset)")
        return self._per_row("masks", rows)

    def _has(self, name: str) -> bool:
        """Whether array ``name`` exists, looked up once (a store's arrays are all laid out by :meth:`create`)."""
        if name not in self._present:
            self._present[name] = name in self.group
        return self._present[name]

    def _per_row(self, name: str, rows: np.ndarray | slice, dtype: type | None = None) -> np.ndarray:
        """Rows of a one-row-per-chunk sharded array (patch tokens, masks), read directly where the layout allows."""
        if name not in self._direct:
            self._direct[name] = shard_rows(self.group[name])
        direct = self._direct[name]
        if direct is None:
            return select_rows(self.group[name], rows, dtype)
        if isinstance(rows, slice):
            rows = np.arange(*rows.indices(direct.shape[0]))
        try:
            return np.asarray(direct.read(rows), dtype=dtype)
        except ShardChecksumError as exc:
            raise DamagedStoreError(f"{exc}; run `featx cache verify` on the store to find it, then re-extract") from None

    # ---- writing ----------------------------------------------------------------------------
    def write_block(
        self,
        block: int,
        features: Mapping[str, Mapping[str, np.ndarray]],
        failed: np.ndarray,
        errors: list[str],
        masks: np.ndarray | None = None,
    ) -> None:
        """Write one whole block, then mark its rows written.

        ``features[layer][kind]`` holds the block's rows (float16); rows flagged in
        ``failed`` are stored as NaN and listed with their error.
        """
        rows = self.block_slice(block)
        n = rows.stop - rows.start
        failed = np.asarray(failed, dtype=bool)
        if failed.shape != (n,) or len(errors) != n:
            raise StoreError(f"block {block}: expected {n} rows, got {failed.shape[0]} flags / {len(errors)} errors")
        for layer, kinds in features.items():
            for kind, values in kinds.items():
                name = f"features/{layer}/{kind}"
                if kind == "patch" and name not in self.group:
                    continue  # this layer was chosen to carry no patch tokens (patch_grid)
                values = np.asarray(values, dtype=np.float16)
                if values.shape[0] != n:
                    raise StoreError(f"block {block}: {layer}/{kind} has {values.shape[0]} rows, expected {n}")
                good = values[~failed]
                if not np.isfinite(good).all():
                    raise StoreError(
                        f"block {block}: non-finite {layer}/{kind} features (float16 overflow?) "
                        "for readable samples; refusing to store them"
                    )
                values = values.copy()
                values[failed] = np.nan
                if f"{name}_scale" in self.group:
                    codes, scale = encode_int8(np.nan_to_num(values))
                    scale[failed] = np.nan
                    self._for_writing(f"{name}_scale")[rows] = scale
                    values = codes
                self._for_writing(name)[rows] = values
        if masks is not None:
            self._for_writing("masks")[rows] = masks
        self._for_writing("failed")[rows] = failed
        self._for_writing("error")[rows] = np.asarray(errors, dtype=str)
        self._for_writing("written")[rows] = True

    def _for_writing(self, name: str) -> zarr.Array:
        """An array that writes every chunk, even one all fill value (see :func:`create_array`)."""
        return self.group[name].with_config({"write_empty_chunks": True})

    def publish(self, provenance_update: Mapping[str, Any] | None = None) -> Path:
        """Mark a fully written partial store complete and publish it as the key's next version.

        The partial folder becomes ``<key>.versions/vNNNN.zarr`` (immutable from then on)
        and the pointer ``<key>.zarr``, which is returned, is switched to it atomically;
        older versions stay until ``featx cache gc``.
        """
        if not isinstance(self.path, Path) or not self.path.name.endswith(PARTIAL_SUFFIX):
            raise StoreError(f"{self.path}: only a local .zarr.partial store can be published")
        pending = self.pending_blocks()
        if pending:
            raise StoreError(f"{self.path}: {len(pending)} blocks are not written yet; cannot publish")
        versions = Versions.of(self.path, PUBLISHED_SUFFIX)
        number = versions.next_number()
        attrs = self.attrs
        failed = np.asarray(self.group["failed"][:])
        attrs.update(dict(provenance_update or {}))
        attrs.update({"complete": True, "completed": _utc_now(), "n_failed": int(failed.sum()), "version": number})
        self.group.attrs["featx"] = attrs
        self.group.attrs[MANIFEST] = build_manifest(self.path)  # as published: an edit is refused when opened
        return versions.publish(self.path, number)

"""Approximate nearest neighbours for stores past a million rows: FAISS IVF-Flat or HNSW, recall measured.

Exact search (``IndexFlatIP``) stays the default: at NIH size (112k x 1024) it is seconds.
An approximate index is an explicit choice (``ApproxIndex.parse("ivf")``, ``"hnsw"``, or
with parameters ``"ivf:nlist=4096,nprobe=64"``), and every record it produces carries
its recall@k against exact search, measured on the same bank and (a seeded sample of)
the same test queries.

* ``ivf``: IVF-Flat, inner product. The coarse quantiser (k-means, ``nlist`` lists) is
  trained on the **train split only**; train+val (the memory bank) is then added. Test
  rows never enter the index.
* ``hnsw``: HNSW-Flat, inner product, ``m`` links per node. HNSW has no training step:
  its graph is built from the memory bank (train+val) alone.

A built index is cached beside the store (``<key>.ann/`` next to ``<key>.zarr``; for a
store read from a URL, under ``~/.cache/featx/ann/<key>/``), named by the store version
and the index parameters and keyed by a digest of the bank it indexes, so a re-run loads
it instead of training it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featx.evaluation.features import ProbeError

INDEX_KINDS = ("ivf", "hnsw")
_BUILD = {"ivf": ("nlist",), "hnsw": ("m", "ef_construction")}  # what a trained index depends on
_SEARCH = {"ivf": ("nprobe",), "hnsw": ("ef_search",)}
_INTS = ("nlist", "nprobe", "m", "ef_construction", "ef_search", "recall_queries")


@dataclass(frozen=True)
class ApproxIndex:
    """Which approximate index to search with, and where built indexes are kept."""

    kind: str
    nlist: int | None = None  # ivf: inverted lists (default: 4 sqrt(n_train), at least 39 train rows per list)
    nprobe: int = 32  # ivf: lists visited per query
    m: int = 32  # hnsw: links per node
    ef_construction: int = 200  # hnsw: candidate list while building
    ef_search: int = 256  # hnsw: candidate list while searching
    recall_queries: int = 1000  # test queries (a seeded sample) whose recall@k is measured against exact search
    cache: Path | None = None  # folder of built indexes (None: not kept)
    version: int | None = None  # the store version the bank comes from (names the cached file)

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ProbeError(f"--knn-index: expected one of {', '.join(INDEX_KINDS)}, got {self.kind!r}")
        bad = [name for name in _INTS if getattr(self, name) is not None and getattr(self, name) < 1]
        if bad:
            raise ProbeError(f"--knn-index: {', '.join(bad)} must be at least 1")

    @classmethod
    def parse(cls, text: str) -> ApproxIndex:
        """``"ivf"``, ``"hnsw"``, or with parameters: ``"ivf:nlist=1024,nprobe=64"``, ``"hnsw:m=48,ef_search=512"``."""
        kind, _, rest = text.partition(":")
        options: dict[str, int] = {}
        for item in filter(None, rest.split(",")):
            name, _, value = item.partition("=")
            if name not in _INTS or not value.strip().isdigit():
                raise ProbeError(f"--knn-index: {item!r} is not NAME=INTEGER with NAME one of {', '.join(_INTS)}")
            options[name] = int(value)
        return cls(kind.strip(), **options)

    def beside(self, provenance: dict[str, Any]) -> ApproxIndex:
        """This spec with its cache folder set beside the store ``provenance`` describes."""
        version = provenance.get("store_version")
        return dataclasses.replace(self, cache=cache_folder(provenance), version=int(version) if version else None)

    def lists(self, n_train: int) -> int:
        """The IVF list count for ``n_train`` training rows."""
        if self.nlist is not None:
            return min(self.nlist, n_train)
        return int(max(1, min(4 * np.sqrt(n_train), n_train // 39)))

    def built_with(self, n_train: int) -> dict[str, int]:
        """The parameters a built index depends on."""
        values = {"nlist": self.lists(n_train), "m": self.m, "ef_construction": self.ef_construction}
        return {name: values[name] for name in _BUILD[self.kind]}

    def searched_with(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _SEARCH[self.kind]}

    def describe(self, n_train: int) -> str:
        """``ivf:nlist=..,nprobe=..``: what the records name as the index."""
        params = {**self.built_with(n_train), **self.searched_with()}
        return f"{self.kind}:" + ",".join(f"{k}={v}" for k, v in params.items())


def cache_folder(provenance: dict[str, Any]) -> Path | None:
    """Where indexes of the store ``provenance`` describes are kept: ``<key>.ann`` beside its pointer."""
    key, path = provenance.get("store_key"), str(provenance.get("store_path") or "")
    if not key or not path:
        return None
    if "://" in path and not path.startswith("file://"):
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "featx" / "ann" / str(key)
    version = Path(path.removeprefix("file://"))
    if version.parent.name.endswith(".versions"):
        return version.parent.parent / f"{key}.ann"
    return version.parent / f"{key}.ann"


@dataclass
class Built:
    """An approximate index over a memory bank, ready to search."""

    spec: ApproxIndex
    index: Any  # faiss.Index
    n_train: int
    loaded: bool  # read from the cache instead of built
    path: Path | None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (similarities, bank rows) of each query; -1 where the index found fewer than ``k``."""
        import faiss

        if self.spec.kind == "ivf":
            faiss.extract_index_ivf(self.index).nprobe = self.spec.nprobe
        else:
            self.index.hnsw.efSearch = max(self.spec.ef_search, k)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def describe(self) -> str:
        return self.spec.describe(self.n_train)


def _digest(bank: np.ndarray, is_train: np.ndarray, spec: ApproxIndex) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(json.dumps({"kind": spec.kind, **spec.built_with(int(is_train.sum())), "shape": bank.shape}).encode())
    hasher.update(np.packbits(is_train).tobytes())
    hasher.update(np.ascontiguousarray(bank).view(np.uint8).data)
    return hasher.hexdigest()


def build_or_load(spec: ApproxIndex, bank: np.ndarray, is_train: np.ndarray) -> Built:
    """The index of ``spec`` over ``bank`` (L2-normalised float32; ``is_train`` marks the train rows).

    Loaded from ``spec.cache`` when an index of the same store version, parameters and
    bank is there; otherwise built (IVF trained on the train rows) and written there.
    """
    import faiss

    bank = np.ascontiguousarray(bank, dtype=np.float32)
    is_train = np.asarray(is_train, dtype=bool)
    n_train = int(is_train.sum())
    if n_train == 0:
        raise ProbeError("an approximate kNN index needs train rows to be trained on")
    path = None
    if spec.cache is not None:
        tag = f"v{spec.version:04d}-" if spec.version is not None else ""
        params = "-".join(f"{k}{v}" for k, v in spec.built_with(n_train).items())
        path = spec.cache / f"{tag}{spec.kind}-{params}-{_digest(bank, is_train, spec)}.faiss"
        if path.exists():
            return Built(spec, faiss.read_index(str(path)), n_train, True, path)
    dim = bank.shape[1]
    if spec.kind == "ivf":
        quantiser = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantiser, dim, spec.lists(n_train), faiss.METRIC_INNER_PRODUCT)
        index.train(bank[is_train])
    else:
        index = faiss.IndexHNSWFlat(dim, spec.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.ef_construction
    index.add(bank)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        faiss.write_index(index, str(staged))
        os.replace(staged, path)
    return Built(spec, index, n_train, False, path)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of the share of the exact top-k (``exact``, one row per query) that ``found`` returned."""
    k = exact.shape[1]
    if len(exact) == 0:
        return float("nan")
    hits = sum(len(np.intersect1d(a[a >= 0], e)) for a, e in zip(found[:, :k], exact))
    return hits / (len(exact) * k)


def measured_recall(found: np.ndarray, queries: np.ndarray, bank: np.ndarray, k: int, n: int, seed: int) -> dict[str, Any]:
    """Recall@k of the approximate lists ``found`` of ``queries``: exact search for a seeded sample of ``n`` of them."""
    import faiss

    chosen = np.arange(len(queries))
    if len(queries) > n:
        chosen = np.sort(np.random.default_rng(seed).choice(len(queries), n, replace=False))
    exact = faiss.IndexFlatIP(bank.shape[1])
    exact.add(np.ascontiguousarray(bank, dtype=np.float32))
    _, truth = exact.search(np.ascontiguousarray(queries[chosen], dtype=np.float32), k)
    return {"knn_recall_at_k": recall_at_k(found[chosen], truth), "knn_recall_k": k,
            "knn_recall_queries": int(len(chosen))}

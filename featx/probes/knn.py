"""Nearest neighbours on cached features, and DINOv2's weighted kNN vote.

Backends (exact inner-product search on L2-normalised features = cosine):

* ``faiss``: ``IndexFlatIP`` (faiss-cpu; on ``cuda`` a ``GpuIndexFlatIP`` when the
  installed faiss has GPU support) - the reference;
* ``torch``: chunked ``matmul`` + ``topk`` on CPU or GPU (optionally in bfloat16/float16
  on a GPU for speed; float32 is the default and what the parity tests check).

The protocol runs **one** search for everything: the memory bank is train+val, the
queries are test, val and (for ML-kNN) the memory-bank points themselves (leave one
out: a point is never its own neighbour). Neighbour lists for the selection phase,
whose memory bank is train only, are the train members of those lists, which is exact
as long as enough of them are returned; queries that come up short are searched again
against train alone.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from featx.probes.features import ProbeError

BACKENDS = ("faiss", "torch")
DEFAULT_KS = (10, 20, 100, 200)
TEMPERATURE = 0.07


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def faiss_has_gpu() -> bool:
    try:
        import faiss
    except ImportError:
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def available_backends() -> list[str]:
    out = []
    if importlib.util.find_spec("faiss") is not None:
        out.append("faiss")
    if importlib.util.find_spec("torch") is not None:
        out.append("torch")
    return out


def pick_backend(device: str = "cpu", backend: str | None = None) -> str:
    """The neighbour backend for ``device``: faiss (GPU build on cuda), else torch."""
    have = available_backends()
    if backend is not None:
        if backend not in BACKENDS:
            raise ProbeError(f"unknown kNN backend {backend!r}; expected one of {BACKENDS}")
        if backend not in have:
            raise ProbeError(f"kNN backend {backend!r} is not installed (installed: {have or 'none'})")
        return backend
    if device.startswith("cuda"):
        return "faiss" if faiss_has_gpu() else "torch"
    if "faiss" in have:
        return "faiss"
    if "torch" in have:
        return "torch"
    raise ProbeError("no kNN backend installed: install faiss-cpu or torch")


@dataclass
class Neighbours:
    """Top-k similarities (descending) and database indices of each query."""

    sims: np.ndarray  # (nq, k) float32
    idx: np.ndarray  # (nq, k) int64


def _search_faiss(queries: np.ndarray, database: np.ndarray, k: int, device: str, chunk: int) -> Neighbours:
    import faiss

    d = database.shape[1]
    if device.startswith("cuda") and faiss_has_gpu():
        resources = faiss.StandardGpuResources()
        config = faiss.GpuIndexFlatConfig()
        config.device = int(device.split(":")[1]) if ":" in device else 0
        index = faiss.GpuIndexFlatIP(resources, d, config)
    else:
        index = faiss.IndexFlatIP(d)
    index.add(database)
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        s, i = index.search(queries[start : start + chunk], k)
        sims[start : start + chunk], idx[start : start + chunk] = s, i
    return Neighbours(sims, idx)


def _search_torch(
    queries: np.ndarray, database: np.ndarray, k: int, device: str, chunk: int, dtype: str
) -> Neighbours:
    import torch

    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    db = torch.from_numpy(database).to(device=device, dtype=torch_dtype)
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, queries.shape[0], chunk):
            q = torch.from_numpy(queries[start : start + chunk]).to(device=device, dtype=torch_dtype)
            s, i = torch.topk(q @ db.T, k, dim=1)
            sims[start : start + chunk] = s.float().cpu().numpy()
            idx[start : start + chunk] = i.cpu().numpy()
    return Neighbours(sims, idx)


def search(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    *,
    backend: str = "faiss",
    device: str = "cpu",
    self_index: np.ndarray | None = None,
    chunk: int = 4096,
    dtype: str = "float32",
) -> Neighbours:
    """Exact top-``k`` by inner product (cosine for L2-normalised inputs).

    ``self_index[i]`` is the database row of query ``i`` itself (or -1): it is never
    returned as its own neighbour.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    database = np.ascontiguousarray(database, dtype=np.float32)
    n_db = database.shape[0]
    extra = 1 if self_index is not None else 0
    if k + extra > n_db:
        raise ProbeError(f"asked for {k} neighbours but the memory bank holds {n_db - extra} other rows")
    kk = k + extra
    if backend == "faiss":
        if dtype != "float32":
            raise ProbeError("the faiss backend searches in float32 only")
        found = _search_faiss(queries, database, kk, device, chunk)
    elif backend == "torch":
        found = _search_torch(queries, database, kk, device, chunk, dtype)
    else:
        raise ProbeError(f"unknown kNN backend {backend!r}; expected one of {BACKENDS}")
    if self_index is None:
        return found
    is_self = found.idx == np.asarray(self_index)[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]  # drop self (or the last) keeping order
    return Neighbours(np.take_along_axis(found.sims, order, 1), np.take_along_axis(found.idx, order, 1))


def restrict(found: Neighbours, member: np.ndarray, new_index: np.ndarray, k: int) -> tuple[Neighbours, np.ndarray]:
    """Keep the neighbours that are members of a sub-bank, renumbered into it.

    Returns the first ``k`` member neighbours of each query and a boolean per query
    telling whether it had at least ``k`` of them (others must be searched again).
    """
    keep = member[found.idx]
    enough = keep.sum(1) >= k
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(found.idx, order, 1)
    sims = np.take_along_axis(found.sims, order, 1)
    return Neighbours(sims, new_index[idx]), enough


def weighted_vote(
    found: Neighbours, train_labels: np.ndarray, k: int, temperature: float = TEMPERATURE, chunk: int = 8192
) -> np.ndarray:
    """DINOv2's kNN: softmax(sim / T) over the top ``k``, summed per class.

    ``train_labels`` is ``(n_train, C)`` one-hot (NaN treated as 0). Returns ``(nq, C)``
    class probabilities (rows sum to 1 for one-hot labels).
    """
    labels = np.nan_to_num(np.asarray(train_labels, dtype=np.float32))
    nq = found.idx.shape[0]
    out = np.empty((nq, labels.shape[1]), dtype=np.float32)
    for start in range(0, nq, chunk):
        s = found.sims[start : start + chunk, :k].astype(np.float64) / temperature
        s -= s.max(1, keepdims=True)
        w = np.exp(s)
        w /= w.sum(1, keepdims=True)
        neighbours = labels[found.idx[start : start + chunk, :k]]  # (b, k, C)
        out[start : start + chunk] = np.einsum("bk,bkc->bc", w, neighbours)
    return out


@dataclass
class ProtocolNeighbours:
    """Every neighbour list a kNN / ML-kNN evaluation needs, from one search.

    Indices of ``final_*`` point into the train+val memory bank; those of ``select_*``
    into train. ``fit_*`` are leave-one-out lists of memory-bank points (for ML-kNN).
    """

    kmax: int
    final_test: Neighbours
    final_fit: Neighbours | None
    final_fit_rows: np.ndarray | None  # positions in train+val
    select_val: Neighbours | None
    select_fit: Neighbours | None
    select_fit_rows: np.ndarray | None  # positions in train
    n_requeried: int = 0


def protocol_neighbours(
    bank: np.ndarray,
    bank_is_train: np.ndarray,
    test: np.ndarray,
    kmax: int,
    *,
    with_selection: bool,
    with_fit: bool,
    fit_max: int | None = None,
    seed: int = 0,
    backend: str = "faiss",
    device: str = "cpu",
    dtype: str = "float32",
    margin: float = 1.15,
) -> ProtocolNeighbours:
    """Search once (queries: test, val, fit points; bank: train+val) and derive the rest.

    ``bank`` holds the L2-normalised train+val features, ``bank_is_train`` which of them
    are train. ``fit_max`` caps the number of leave-one-out fit points (a random subset;
    ``None`` = all, the exact ML-kNN estimate).
    """
    n_bank = bank.shape[0]
    train_pos = np.cumsum(bank_is_train) - 1  # bank row -> train row
    train_rows = np.flatnonzero(bank_is_train)
    val_rows = np.flatnonzero(~bank_is_train) if with_selection else np.zeros(0, dtype=np.int64)
    fit_rows = None
    if with_fit:
        fit_rows = np.arange(n_bank)
        if fit_max is not None and 0 < fit_max < n_bank:
            fit_rows = np.sort(np.random.default_rng(seed).choice(n_bank, fit_max, replace=False))
    own = np.concatenate([val_rows, fit_rows if fit_rows is not None else np.zeros(0, dtype=np.int64)])
    own = np.unique(own)
    train_share = bank_is_train.mean() if with_selection else 1.0
    k_search = min(n_bank - 1, int(np.ceil(kmax / max(train_share, 1e-6) * margin)) + 8)
    k_search = max(k_search, kmax) if with_selection else kmax
    final_test = search(test, bank, kmax, backend=backend, device=device, dtype=dtype)
    if own.size:
        own_found = search(bank[own], bank, k_search, backend=backend, device=device, self_index=own, dtype=dtype)
        where = {int(r): i for i, r in enumerate(own)}
    result = ProtocolNeighbours(kmax, final_test, None, None, None, None, None)
    if fit_rows is not None:
        sel = np.array([where[int(r)] for r in fit_rows])
        result.final_fit = Neighbours(own_found.sims[sel, :kmax], own_found.idx[sel, :kmax])
        result.final_fit_rows = fit_rows
    if with_selection:
        n_train = int(bank_is_train.sum())
        if kmax + 1 > n_train:
            raise ProbeError(f"k={kmax} needs more than the {n_train} training rows")
        sel_queries = val_rows
        if fit_rows is not None:
            sel_queries = np.concatenate([val_rows, fit_rows[bank_is_train[fit_rows]]])
        sel = np.array([where[int(r)] for r in sel_queries], dtype=np.int64)
        sub = Neighbours(own_found.sims[sel], own_found.idx[sel])
        restricted, enough = restrict(sub, bank_is_train, train_pos, kmax)
        short = np.flatnonzero(~enough)
        if short.size:  # too few train members among the returned neighbours: search train alone
            q = sel_queries[short]
            self_in_train = np.where(bank_is_train[q], train_pos[q], -1)
            again = search(
                bank[q], bank[train_rows], kmax, backend=backend, device=device, self_index=self_in_train, dtype=dtype
            )
            restricted.sims[short], restricted.idx[short] = again.sims, again.idx
        result.n_requeried = int(short.size)
        n_val = val_rows.size
        result.select_val = Neighbours(restricted.sims[:n_val], restricted.idx[:n_val])
        if fit_rows is not None:
            result.select_fit = Neighbours(restricted.sims[n_val:], restricted.idx[n_val:])
            result.select_fit_rows = train_pos[sel_queries[n_val:]]
    return result

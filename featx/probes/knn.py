"""Nearest neighbours on cached features, and DINOv2's weighted kNN vote (softmax over max(ks) once).

Backends (exact inner-product search on L2-normalised features = cosine):

* ``faiss``: ``IndexFlatIP`` (faiss-cpu; on ``cuda`` a ``GpuIndexFlatIP`` when the
  installed faiss has GPU support) - the reference;
* ``torch``: chunked ``matmul`` + ``topk`` on CPU or GPU (optionally in bfloat16/float16
  for speed; float32 is the default and what the parity tests check).

Everything after the search (dropping a query's own row, restricting lists to a sub-bank,
the weighted vote, ML-kNN's counting) is torch on the search's device, so on a GPU the
neighbour lists never leave it; only the class scores come back to the host.

The protocol runs **one** search for everything: the memory bank is train+val, the
queries are test, val and (for ML-kNN) the memory-bank points themselves (leave one
out: a point is never its own neighbour). Neighbour lists for the selection phase,
whose memory bank is train only, are the train members of those lists, which is exact
as long as enough of them are returned; queries that come up short are searched again
against train alone.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from featx.evaluation.features import ProbeError
from featx.probes import ann
from featx.probes.job import KNN_KS, KNN_TEMPERATURE

BACKENDS = ("faiss", "torch")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DEFAULT_KS = KNN_KS
TEMPERATURE = KNN_TEMPERATURE

ArrayLike = np.ndarray | torch.Tensor


def l2_normalise(x: ArrayLike, device: str = "cpu") -> torch.Tensor:
    """Rows scaled to unit length, as float32 on ``device`` (uploaded in their stored dtype)."""
    x = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x).to(device).float()
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


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
    out.append("torch")
    return out


def pick_backend(device: str = "cpu", backend: str | None = None) -> str:
    """The neighbour backend for ``device``: faiss on CPU (its GPU build on cuda), else torch."""
    have = available_backends()
    if backend is not None:
        if backend not in BACKENDS:
            raise ProbeError(f"unknown kNN backend {backend!r}; expected one of {BACKENDS}")
        if backend not in have:
            raise ProbeError(f"kNN backend {backend!r} is not installed (installed: {have})")
        return backend
    if device.startswith("cuda"):
        return "faiss" if faiss_has_gpu() else "torch"
    return "faiss" if "faiss" in have else "torch"


@dataclass
class Neighbours:
    """Top-k similarities (descending) and database indices of each query, on one device."""

    sims: torch.Tensor  # (nq, k) float32
    idx: torch.Tensor  # (nq, k) int64

    @classmethod
    def of(cls, sims: ArrayLike, idx: ArrayLike, device: str = "cpu") -> Neighbours:
        return cls(torch.as_tensor(sims).to(device).float(), torch.as_tensor(idx).to(device).long())

    def head(self, k: int) -> Neighbours:
        return Neighbours(self.sims[:, :k], self.idx[:, :k])

    def take(self, rows: torch.Tensor | slice) -> Neighbours:
        return Neighbours(self.sims[rows], self.idx[rows])


def _search_faiss(queries: torch.Tensor, database: torch.Tensor, k: int, device: str, chunk: int) -> Neighbours:
    import faiss

    db = database.float().cpu().numpy()
    d = db.shape[1]
    if device.startswith("cuda") and faiss_has_gpu():
        resources = faiss.StandardGpuResources()
        config = faiss.GpuIndexFlatConfig()
        config.device = int(device.split(":")[1]) if ":" in device else 0
        index = faiss.GpuIndexFlatIP(resources, d, config)
    else:
        index = faiss.IndexFlatIP(d)
    index.add(db)
    sims = np.empty((queries.shape[0], k), dtype=np.float32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], chunk):
        s, i = index.search(queries[start : start + chunk].float().cpu().numpy(), k)
        sims[start : start + chunk], idx[start : start + chunk] = s, i
    return Neighbours.of(sims, idx, device)


def _search_approx(built: ann.Built, queries: torch.Tensor, database: torch.Tensor, k: int, device: str,
                   chunk: int) -> Neighbours:
    sims, idx = built.search(queries.float().cpu().numpy(), k)
    short = np.flatnonzero((idx < 0).any(axis=1))
    if short.size:  # fewer than k in the lists visited: those queries exactly
        exact = _search_faiss(queries[torch.as_tensor(short).to(queries.device)], database, k, "cpu", chunk)
        sims[short], idx[short] = exact.sims.numpy(), exact.idx.numpy()
    return Neighbours.of(sims, idx, device)


def _search_torch(queries: torch.Tensor, database: torch.Tensor, k: int, chunk: int, dtype: torch.dtype) -> Neighbours:
    db = database.to(dtype)
    sims = torch.empty((queries.shape[0], k), dtype=torch.float32, device=database.device)
    idx = torch.empty((queries.shape[0], k), dtype=torch.int64, device=database.device)
    with torch.inference_mode():
        for start in range(0, queries.shape[0], chunk):
            s, i = torch.topk(queries[start : start + chunk].to(dtype) @ db.T, k, dim=1)
            sims[start : start + chunk], idx[start : start + chunk] = s, i
    return Neighbours(sims, idx)


def search(
    queries: ArrayLike,
    database: ArrayLike,
    k: int,
    *,
    backend: str = "faiss",
    device: str = "cpu",
    self_index: ArrayLike | None = None,
    chunk: int = 4096,
    dtype: str = "float32",
    approx: ann.Built | None = None,
) -> Neighbours:
    """Exact top-``k`` by inner product (cosine for L2-normalised inputs), on ``device``.

    ``self_index[i]`` is the database row of query ``i`` itself (or -1): it is never
    returned as its own neighbour. ``approx`` (an index built over ``database``) searches
    approximately instead; a query it finds fewer than ``k`` neighbours for is searched exactly.
    """
    if dtype not in DTYPES:
        raise ProbeError(f"unknown search dtype {dtype!r}; expected one of {sorted(DTYPES)}")
    queries = torch.as_tensor(queries).to(device)
    database = torch.as_tensor(database).to(device)
    n_db = database.shape[0]
    extra = 1 if self_index is not None else 0
    if k + extra > n_db:
        raise ProbeError(f"asked for {k} neighbours but the memory bank holds {n_db - extra} other rows")
    kk = k + extra
    if approx is not None:
        found = _search_approx(approx, queries, database, kk, device, chunk)
    elif backend == "faiss":
        if dtype != "float32":
            raise ProbeError("the faiss backend searches in float32 only")
        found = _search_faiss(queries, database, kk, device, chunk)
    elif backend == "torch":
        found = _search_torch(queries, database, kk, chunk, DTYPES[dtype])
    else:
        raise ProbeError(f"unknown kNN backend {backend!r}; expected one of {BACKENDS}")
    if self_index is None:
        return found
    is_self = found.idx == torch.as_tensor(self_index).to(device)[:, None]
    order = torch.argsort(is_self.to(torch.uint8), dim=1, stable=True)[:, :k]  # drop self (or the last), keep order
    return Neighbours(found.sims.gather(1, order), found.idx.gather(1, order))


def restrict(found: Neighbours, member: torch.Tensor, new_index: torch.Tensor, k: int) -> tuple[Neighbours, torch.Tensor]:
    """Keep the neighbours that are members of a sub-bank, renumbered into it.

    Returns the first ``k`` member neighbours of each query and a boolean per query
    telling whether it had at least ``k`` of them (others must be searched again).
    """
    keep = member[found.idx]
    enough = keep.sum(1) >= k
    order = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)[:, :k]
    idx = found.idx.gather(1, order)
    return Neighbours(found.sims.gather(1, order), new_index[idx]), enough


VOTES = ("dinov2", "renormalised")


def weighted_vote(
    found: Neighbours,
    train_labels: ArrayLike,
    k: int,
    temperature: float = TEMPERATURE,
    *,
    kmax: int | None = None,
    vote: str = "dinov2",
    chunk: int = 8192,
) -> np.ndarray:
    """Weighted kNN class scores from the first ``k`` neighbours of each query.

    ``vote="dinov2"`` is DINOv2's ``eval/knn.py``: the weights are ``softmax(sim / T)``
    over the top ``kmax`` neighbours (``max(ks)``; default: every column of ``found``),
    computed once, and the score of a class is the sum of the first ``k`` of those
    weights whose neighbour carries it (not renormalised, so rows sum to at most 1).
    ``vote="renormalised"`` takes the softmax over each k's own ``k`` neighbours instead
    (rows sum to 1 for one-hot labels); arg-max is the same, the scores (and AUROC) are not.

    ``train_labels`` is ``(n_train, C)`` one-hot or multi-hot (NaN treated as 0).
    Returns ``(nq, C)`` scores.
    """
    if vote not in VOTES:
        raise ProbeError(f"unknown kNN vote {vote!r}; expected one of {VOTES}")
    width = found.idx.shape[1] if kmax is None else int(kmax)
    if not 1 <= k <= width <= found.idx.shape[1]:
        raise ProbeError(f"kNN vote needs 1 <= k ({k}) <= kmax ({width}) <= neighbours listed ({found.idx.shape[1]})")
    span = width if vote == "dinov2" else k
    labels = torch.nan_to_num(torch.as_tensor(train_labels).to(found.idx.device).float())
    out = []
    for start in range(0, found.idx.shape[0], chunk):
        weights = torch.softmax(found.sims[start : start + chunk, :span].double() / temperature, dim=1)[:, :k]
        neighbours = labels[found.idx[start : start + chunk, :k]].double()  # (b, k, C)
        out.append(torch.einsum("bk,bkc->bc", weights, neighbours).float())
    return torch.cat(out).cpu().numpy() if out else np.zeros((0, labels.shape[1]), dtype=np.float32)


@dataclass
class ProtocolNeighbours:
    """Every neighbour list a kNN / ML-kNN evaluation needs, from one search.

    Indices of ``final_*`` point into the train+val memory bank; those of ``select_*``
    into train. ``fit_*`` are leave-one-out lists of memory-bank points (for ML-kNN).
    """

    kmax: int
    final_test: Neighbours
    backend: str
    dtype: str
    fit_max: int | None = None
    final_fit: Neighbours | None = None
    final_fit_rows: torch.Tensor | None = None  # positions in train+val
    select_val: Neighbours | None = None
    select_fit: Neighbours | None = None
    select_fit_rows: torch.Tensor | None = None  # positions in train
    n_requeried: int = 0
    approx: dict[str, Any] = field(default_factory=dict)  # the approximate index and its measured recall@k


def protocol_neighbours(
    bank: ArrayLike,
    bank_is_train: ArrayLike,
    test: ArrayLike,
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
    index: ann.ApproxIndex | None = None,
) -> ProtocolNeighbours:
    """Search once (queries: test, val, fit points; bank: train+val) and derive the rest.

    ``bank`` holds the L2-normalised train+val features, ``bank_is_train`` which of them
    are train. ``fit_max`` caps the number of leave-one-out fit points (a random subset;
    ``None`` = all, the exact ML-kNN estimate). ``index`` searches an approximate index
    over the bank (IVF trained on its train rows) instead, and measures the test lists'
    recall@``kmax`` against exact search (``result.approx``); the few selection queries
    searched again against train alone are searched exactly.
    """
    bank = torch.as_tensor(bank).to(device)
    is_train = torch.as_tensor(np.asarray(bank_is_train, dtype=bool)).to(device)
    n_bank = bank.shape[0]
    train_pos = torch.cumsum(is_train.long(), 0) - 1  # bank row -> train row
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    val_rows = torch.nonzero(~is_train).flatten() if with_selection else empty
    fit_rows = None
    if with_fit:
        fit_rows = torch.arange(n_bank, device=device)
        if fit_max is not None and 0 < fit_max < n_bank:
            chosen = np.sort(np.random.default_rng(seed).choice(n_bank, fit_max, replace=False))
            fit_rows = torch.from_numpy(chosen).to(device)
    own = torch.unique(torch.cat([val_rows, fit_rows if fit_rows is not None else empty]))  # sorted
    train_share = float(is_train.float().mean()) if with_selection else 1.0
    k_search = min(n_bank - 1, int(np.ceil(kmax / max(train_share, 1e-6) * margin)) + 8)
    k_search = max(k_search, kmax) if with_selection else kmax
    built, approx = None, {}
    if index is not None:
        started = time.perf_counter()
        built = ann.build_or_load(index, bank.float().cpu().numpy(), is_train.cpu().numpy())
        approx = {"knn_index": built.describe(), "knn_index_cached": built.loaded,
                  "knn_index_seconds": round(time.perf_counter() - started, 3)}
    final_test = search(test, bank, kmax, backend=backend, device=device, dtype=dtype, approx=built)
    if built is not None:
        approx.update(ann.measured_recall(final_test.idx.cpu().numpy(), torch.as_tensor(test).float().cpu().numpy(),
                                          bank.float().cpu().numpy(), kmax, index.recall_queries, seed))
    subset = fit_max if fit_rows is not None and fit_rows.numel() < n_bank else None
    result = ProtocolNeighbours(kmax, final_test, backend=backend, dtype=dtype, fit_max=subset, approx=approx)
    if own.numel():
        queries = bank if own.numel() == n_bank else bank[own]  # the exact ML-kNN fit queries every bank row
        own_found = search(queries, bank, k_search, backend=backend, device=device, self_index=own, dtype=dtype,
                           approx=built)
        del queries
    if fit_rows is not None:
        every = fit_rows.numel() == own.numel()  # own = fit rows (+ val rows, which are bank rows too)
        result.final_fit = (own_found if every else own_found.take(torch.searchsorted(own, fit_rows))).head(kmax)
        result.final_fit_rows = fit_rows
    if with_selection:
        n_train = int(is_train.sum())
        if kmax + 1 > n_train:
            raise ProbeError(f"k={kmax} needs more than the {n_train} training rows")
        sel_queries = val_rows
        if fit_rows is not None:
            sel_queries = torch.cat([val_rows, fit_rows[is_train[fit_rows]]])
        restricted, enough = restrict(own_found.take(torch.searchsorted(own, sel_queries)), is_train, train_pos, kmax)
        short = torch.nonzero(~enough).flatten()
        if short.numel():  # too few train members among the returned neighbours: search train alone
            q = sel_queries[short]
            self_in_train = torch.where(is_train[q], train_pos[q], -1)
            again = search(
                bank[q], bank[is_train], kmax, backend=backend, device=device, self_index=self_in_train, dtype=dtype
            )
            restricted.sims[short], restricted.idx[short] = again.sims, again.idx
        result.n_requeried = int(short.numel())
        n_val = val_rows.numel()
        result.select_val = restricted.take(slice(0, n_val))
        if fit_rows is not None:
            result.select_fit = restricted.take(slice(n_val, None))
            result.select_fit_rows = train_pos[sel_queries[n_val:]]
    return result

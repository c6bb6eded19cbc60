"""The evaluation protocol of one setting on one dataset: select on val, score test once.

Each ``evaluate_*`` takes a :class:`~featx.evaluation.selection.Splits` (test labels sealed)
and returns an :class:`Outcome`: the validation score of every candidate, the selected
hyper-parameters and the single test scoring (with patient-bootstrap intervals).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featx.evaluation.features import ProbeError
from featx.evaluation.metrics import Scored, score, selection_score
from featx.evaluation.selection import Splits
from featx.probes import knn as knn_mod
from featx.probes import linear as linear_mod
from featx.probes.ann import ApproxIndex
from featx.probes.mlknn import MLkNN

log = logging.getLogger("featx.probes")


@dataclass
class Outcome:
    """What one setting produced on one dataset."""

    setting: str
    method: str
    hyperparameters: dict[str, Any]
    test: Scored
    n_train: int
    n_test: int
    val: list[tuple[dict[str, Any], Scored]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    test_scores: np.ndarray | None = None  # the scored predictions of the test rows (no labels)


def _score_test(
    splits: Splits, name: str, setting: str, probs: np.ndarray, hyper: dict[str, Any], n_boot: int, seed: int
) -> tuple[Scored, dict[str, Any]]:
    """The one test scoring, entered in the test-use ledger; returns its ledger fields too."""
    test = splits.score_test_once(name, lambda _inputs: probs, setting=setting, hyperparameters=hyper, n_boot=n_boot, seed=seed)
    return test, splits.test_use(name).as_record()


def _val_scored(splits: Splits, probs: np.ndarray, n_boot: int, seed: int) -> Scored:
    val = splits.val
    return score(val.labels, probs, val.patients, task=splits.task, label_names=splits.label_names, n_boot=n_boot, seed=seed)


def _k_candidates(splits: Splits, ks: Sequence[int], k: int | None) -> tuple[list[int], list[str]]:
    """The k values to try (a fixed ``k``, or ``ks`` cut to what the memory bank allows)."""
    notes: list[str] = []
    candidates = [int(k)] if k is not None else sorted({int(x) for x in ks})
    limit = (splits.train.n if len(candidates) > 1 else splits.train_val.n) - 1
    kept = [c for c in candidates if c <= limit]
    if len(kept) < len(candidates):
        dropped = [c for c in candidates if c > limit]
        notes.append(f"k={dropped} dropped: the memory bank has only {limit + 1} rows")
        kept = kept or [max(1, limit)]
    return kept, notes


def knn_neighbours(
    splits: Splits,
    kmax: int,
    *,
    selecting: bool,
    fit: bool,
    fit_max: int | None = None,
    seed: int = 0,
    backend: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    index: ApproxIndex | None = None,
) -> knn_mod.ProtocolNeighbours:
    """The one search of the kNN protocol on the last layer's CLS (see :func:`knn.protocol_neighbours`)."""
    if selecting:
        splits.view("val")  # raises NoValidationSplit before any search
    bank_view = splits.train_val
    bank = knn_mod.l2_normalise(bank_view.features(1, False, dtype=None), device)  # stored dtype up, float32 there
    test = knn_mod.l2_normalise(splits.test_inputs().features(1, False, dtype=None), device)
    return knn_mod.protocol_neighbours(
        bank,
        np.isin(bank_view.rows, splits.train.rows),
        test,
        kmax,
        with_selection=selecting,
        with_fit=fit,
        fit_max=fit_max,
        seed=seed,
        backend=knn_mod.pick_backend(device, backend),
        device=device,
        dtype=dtype,
        index=index,
    )


def _serves(found: knn_mod.ProtocolNeighbours, splits: Splits, kmax: int, selecting: bool, fit: bool) -> bool:
    """Whether ``found`` holds every list a kNN setting on ``splits`` needs."""
    has_selection = found.select_val is not None and (not fit or found.select_fit is not None)
    return (
        found.kmax >= kmax
        and found.final_test.idx.shape[0] == splits.n_test
        and (not selecting or has_selection)
        and (not fit or found.final_fit is not None)
    )


def evaluate_knn(
    splits: Splits,
    *,
    setting: str = "knn",
    ks: Sequence[int] = knn_mod.DEFAULT_KS,
    k: int | None = None,
    temperature: float = knn_mod.TEMPERATURE,
    vote: str = "dinov2",
    multilabel_method: str = "mlknn",
    smoothing: float = 1.0,
    backend: str | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    fit_max: int | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    val_boot: int = 200,
    test_name: str | None = None,
    neighbours: knn_mod.ProtocolNeighbours | None = None,
    hyper_extra: dict[str, Any] | None = None,
    index: ApproxIndex | None = None,
) -> Outcome:
    """kNN on the last layer's CLS: DINOv2 weighted vote, or ML-kNN for multi-label.

    ``k`` fixes k (no selection, no val needed); otherwise k is chosen from ``ks`` by
    validation macro AUROC with train as memory bank, and the test is scored once with
    train+val as memory bank. The vote (``vote="dinov2"``, the default) takes the softmax
    over the top ``max(ks)`` neighbours once and sums the first k weights per class;
    ``vote="renormalised"`` is the per-k softmax (see :func:`knn.weighted_vote`).
    ``neighbours`` reuses the lists of an earlier :func:`knn_neighbours` call on the same
    splits (one search serving several settings). ``hyper_extra`` is added to the
    recorded hyper-parameters (few-shot: shots and seed). ``index`` searches an approximate
    index (featx.probes.ann); every record then carries its measured recall@k.
    """
    use_mlknn = setting == "mlknn" or (splits.task == "multilabel" and multilabel_method == "mlknn")
    if setting == "mlknn" and splits.task != "multilabel":
        raise ProbeError(f"{splits.dataset}: ML-kNN is for multi-label data; this store is {splits.task}")
    if vote not in knn_mod.VOTES:
        raise ProbeError(f"unknown kNN vote {vote!r}; expected one of {knn_mod.VOTES}")
    candidates, notes = _k_candidates(splits, ks, k)
    selecting = len(candidates) > 1
    kmax = max(candidates)
    last = splits.layers[-1]
    bank_view = splits.train_val
    t_search = time.perf_counter()
    if neighbours is None:
        found = knn_neighbours(
            splits, max(candidates), selecting=selecting, fit=use_mlknn, fit_max=fit_max, seed=seed,
            backend=backend, device=device, dtype=dtype, index=index,
        )
    elif not _serves(neighbours, splits, max(candidates), selecting, use_mlknn):
        raise ProbeError("the neighbour lists given were searched for a different kNN setting")
    else:
        found = neighbours
    t_search = time.perf_counter() - t_search
    train_labels = splits.train.labels
    bank_labels = bank_view.labels

    def predict(neigh: knn_mod.Neighbours, labels: np.ndarray, kk: int, fit: knn_mod.Neighbours | None, fit_rows) -> np.ndarray:
        if use_mlknn:
            model = MLkNN(kk, smoothing).fit(labels, fit.idx, fit_rows)
            return model.predict_proba(neigh.idx)
        return knn_mod.weighted_vote(neigh, labels, kk, temperature, kmax=kmax, vote=vote)

    def hyper(kk: int) -> dict[str, Any]:
        h: dict[str, Any] = {"k": kk, "metric": "cosine", "features": f"cls/{last}", "backend": found.backend, "search_dtype": found.dtype}
        if found.approx:
            h["knn_index"] = found.approx["knn_index"]
        if use_mlknn:
            h.update({"method": "mlknn", "smoothing": smoothing})
            if found.fit_max:
                h["mlknn_fit_max"] = found.fit_max
        else:
            h.update({"method": "weighted_knn", "T": temperature, "vote": vote, "softmax_over": kmax if vote == "dinov2" else kk})
        if selecting:
            h["ks"] = list(candidates)
        return {**h, **(hyper_extra or {})}

    val_records: list[tuple[dict[str, Any], Scored]] = []
    if selecting:

        def score_val(kk: int) -> float:
            probs = predict(found.select_val, train_labels, kk, found.select_fit, found.select_fit_rows)
            val_records.append((hyper(kk), _val_scored(splits, probs, val_boot, seed)))
            return selection_score(splits.val.labels, probs)

        chosen = splits.select(candidates, score_val).best
    else:
        chosen = candidates[0]
    probs = predict(found.final_test, bank_labels, chosen, found.final_fit, found.final_fit_rows)
    final_hyper = {**hyper(chosen), "selected_on": "val" if selecting else "fixed", **(hyper_extra or {})}
    test, use = _score_test(splits, test_name or setting, setting, probs, final_hyper, n_boot, seed)
    return Outcome(
        setting=setting,
        method="mlknn" if use_mlknn else "weighted_knn",
        hyperparameters=final_hyper,
        test=test,
        n_train=bank_view.n,
        n_test=splits.n_test,
        val=val_records,
        notes=notes,
        extra={"n_requeried": found.n_requeried, "seconds_search": round(t_search, 3), **found.approx, **use},
        test_scores=probs,
    )


def evaluate_linear(
    splits: Splits,
    *,
    setting: str = "linear",
    backend: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 128,
    lrs: Sequence[float] = linear_mod.LRS,
    cs: Sequence[float] = linear_mod.CS,
    config: linear_mod.LinearConfig | None = None,
    n_boot: int = 1000,
    val_boot: int = 200,
    test_name: str | None = None,
    hyper_extra: dict[str, Any] | None = None,
) -> Outcome:
    """The linear-probe grid: train on train, choose on val, retrain on train+val, test once.

    ``hyper_extra`` is added to the recorded hyper-parameters (few-shot: shots and seed).
    """
    backend = linear_mod.pick_backend(device, backend)
    layers = splits.layers
    grid = [config] if config is not None else linear_mod.protocol_grid(len(layers), backend, lrs, cs)
    train = splits.train
    blocks = train.blocks
    n_classes = len(splits.label_names)
    val_records: list[tuple[dict[str, Any], Scored]] = []
    common = {"backend": backend}
    if backend == "torch":
        common.update({"optimizer": "sgd", "momentum": 0.9, "schedule": "cosine", "epochs": epochs, "batch_size": batch_size})
    if len(grid) > 1:
        val = splits.val  # raises NoValidationSplit
        if backend == "torch":
            dims = {name: value.shape[1] for name, value in blocks.items()}
            with splits.selecting():
                model = linear_mod.TorchGrid(grid, layers, dims, n_classes, splits.task, device=device, seed=seed)
                model.fit(blocks, train.rows, train.labels, epochs=epochs, batch_size=batch_size)
                val_probs = model.predict(blocks, val.rows)
            results = []
            for g, cfg in enumerate(grid):
                val_records.append(({**cfg.as_dict(), **common}, _val_scored(splits, val_probs[:, g], val_boot, seed)))
                results.append((cfg, selection_score(val.labels, val_probs[:, g])))
            selection = splits.best_of(results)
        else:

            def score_val(cfg: linear_mod.LinearConfig) -> float:
                (probs,) = linear_mod.fit_predict(
                    cfg, splits.task, blocks, layers, train.rows, train.labels, [val.rows], backend=backend, device=device, seed=seed
                )
                val_records.append(({**cfg.as_dict(), **common}, _val_scored(splits, probs, val_boot, seed)))
                return selection_score(val.labels, probs)

            selection = splits.select(grid, score_val)
        chosen = selection.best
    else:
        chosen = grid[0]
    final = splits.train_val
    test_rows = splits.test_inputs().rows
    (probs,) = linear_mod.fit_predict(
        chosen,
        splits.task,
        blocks,
        layers,
        final.rows,
        final.labels,
        [test_rows],
        backend=backend,
        device=device,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
    )
    final_hyper = {
        **chosen.as_dict(),
        **common,
        "selected_on": "val" if len(grid) > 1 else "fixed",
        "retrained_on": "train+val" if splits.has_val else "train",
    }
    if len(grid) > 1:
        final_hyper["grid"] = [cfg.as_dict() for cfg in grid]
    final_hyper.update(hyper_extra or {})
    test, use = _score_test(splits, test_name or setting, setting, probs, final_hyper, n_boot, seed)
    return Outcome(
        setting=setting,
        method=f"linear_{backend}",
        hyperparameters=final_hyper,
        test=test,
        n_train=final.n,
        n_test=splits.n_test,
        val=val_records,
        extra=use,
        test_scores=probs,
    )

"""Few-shot probes: n patients per class from the training split, several seeds.

* A patient counts for a class only if **every** one of their training images carries
  it (the NIH rule of the paper; for multi-class data: all their images are of that
  class). Unknown labels (NaN) do not count.
* For each n (1, 2, 4, ... or ``"all"`` = the whole training split) and each seed, n
  eligible patients are drawn per class (without replacement; a patient already drawn
  for another class is avoided while others remain); all their training images form
  the training set.
* The validation split is **never** used (the released code appended it to the
  few-shot training set), so nothing is selected: kNN uses a fixed k
  (``min(k, (n_train - 1) // 2)``, ML-kNN for multi-label; with k close to the whole
  training set ML-kNN's leave-one-out counts turn anti-informative) and the linear probe a fixed
  L2-regularised logistic regression (C = 1, last-layer CLS; ``linear="logistic"``, the
  default: it converges on a handful of rows) or the paper's SGD linear layer
  (``linear="sgd"``, lr 1e-3, 10 epochs, batch 128); records name the probe.
* Each (probe, n, seed) is scored on test once; an aggregate per (probe, n) reports the
  mean over seeds, the spread over seeds (std, min, max, per-seed values) and a 95%
  interval for that mean from a bootstrap over seeds and test patients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featx.evaluation.features import ProbeData, ProbeError
from featx.evaluation.selection import Splits
from featx.probes.linear import LinearConfig
from featx.probes.protocol import Outcome, evaluate_knn, evaluate_linear


class ShotsError(ProbeError):
    """More shots were asked for than there are eligible patients."""


def eligible_patients(data: ProbeData) -> dict[str, np.ndarray]:
    """Per class, the training patients all of whose images carry that class."""
    train = data.split == "train"
    patients = data.patients[train]
    labels = data.labels[train]
    order = np.argsort(patients, kind="stable")
    patients, labels = patients[order], labels[order]
    unique, starts = np.unique(patients, return_index=True)
    carries = np.nan_to_num(labels, nan=0.0) > 0.5
    all_carry = np.logical_and.reduceat(carries, starts, axis=0) if unique.size else np.zeros((0, labels.shape[1]), bool)
    return {name: unique[all_carry[:, c]] for c, name in enumerate(data.label_names)}


def sample_rows(data: ProbeData, shots: int | str, seed: int) -> np.ndarray:
    """Row numbers of the few-shot training set (all train rows for ``"all"``)."""
    train_rows = np.flatnonzero(data.split == "train")
    if shots == "all":
        return train_rows
    n = int(shots)
    eligible = eligible_patients(data)
    short = {name: len(p) for name, p in eligible.items() if len(p) < n}
    if short:
        detail = ", ".join(f"{name}: {count}" for name, count in short.items())
        raise ShotsError(
            f"{data.dataset or 'store'}: {n} patients per class requested but fewer are eligible "
            f"(every training image of the patient carries the class) for {detail}"
        )
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for name in data.label_names:
        pool = eligible[name]
        fresh = np.array([p for p in pool if p not in chosen])
        source = fresh if len(fresh) >= n else pool
        chosen.update(rng.choice(source, size=n, replace=False).tolist())
    return train_rows[np.isin(data.patients[train_rows], list(chosen))]


FEWSHOT_LINEAR = ("logistic", "sgd")
SGD_LR = 1e-3  # the paper's grid starts here; few-shot has no validation to choose another


@dataclass
class _Run:
    probe: str
    shots: int | str
    seed: int
    outcome: Outcome


def _aggregate(runs: list[_Run], data: ProbeData, *, n_boot: int, seed: int, allow_test_reuse: bool) -> Outcome:
    """The mean over seeds of one (probe, shots), with spread and a seeds x patients interval."""
    first = runs[0].outcome
    hyper = {k: v for k, v in first.hyperparameters.items() if k not in ("fewshot_seed", "k", "n_patients")}
    hyper = {**hyper, "shots": runs[0].shots, "seeds": [r.seed for r in runs]}
    splits = Splits(data, allow_test_reuse=allow_test_reuse)
    scored = splits.score_test_over_seeds(
        ("aggregate", first.setting, runs[0].shots),
        [r.outcome.test_scores for r in runs],
        setting=first.setting,
        hyperparameters=hyper,
        n_boot=n_boot,
        seed=seed,
    )
    macro = scored.over_seeds["auroc_macro"]
    use = splits.test_use(("aggregate", first.setting, runs[0].shots)).as_record()
    use["test_reuse"] = max([use["test_reuse"]] + [int(r.outcome.extra.get("test_reuse", 0)) for r in runs])
    return Outcome(
        setting=first.setting,
        method=first.method,
        hyperparameters=hyper,
        test=scored,
        n_train=int(np.mean([r.outcome.n_train for r in runs])),
        n_test=first.n_test,
        extra={
            "aggregate": "mean_over_seeds",
            "n_seeds": len(runs),
            # the spread of the macro AUROC over seeds, under the names featx report reads
            "macro_std": macro["std"],
            "macro_min": macro["min"],
            "macro_max": macro["max"],
            "macro_per_seed": macro["values"],
            **use,
        },
    )


def evaluate_fewshot(
    data: ProbeData,
    *,
    shots: Sequence[int | str] = (1, 2, 4, 8, 16, "all"),
    n_seeds: int = 5,
    probes: Sequence[str] = ("knn", "linear"),
    k: int = 10,
    C: float = 1.0,
    linear: str = "logistic",
    lr: float = SGD_LR,
    epochs: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "cpu",
    knn_backend: str | None = None,
    n_boot: int = 1000,
    val_boot: int = 0,
    problems: list[str] | None = None,
    name: str = "",
    allow_test_reuse: bool = False,
) -> list[Outcome]:
    """Per-seed outcomes and one aggregate per (probe, shots); skips impossible shot counts.

    ``linear="logistic"`` (default) fits scikit-learn's L2 logistic regression (L-BFGS,
    C = ``C``) on the last CLS; ``linear="sgd"`` trains the paper's linear layer (SGD
    momentum 0.9, cosine decay, ``lr``, ``epochs``, ``batch_size``) on the same features.
    """
    del val_boot  # nothing is selected on validation in few-shot
    outcomes: list[Outcome] = []
    bad = [p for p in probes if p not in ("knn", "linear")]
    if bad:
        raise ProbeError(f"unknown few-shot probe(s) {bad}; expected knn and/or linear")
    if linear not in FEWSHOT_LINEAR:
        raise ProbeError(f"unknown few-shot linear probe {linear!r}; expected one of {FEWSHOT_LINEAR}")
    for n in shots:
        repeats = 1 if n == "all" else n_seeds
        runs: list[_Run] = []
        try:
            samples = [(seed + r, sample_rows(data, n, seed + r)) for r in range(repeats)]
        except ShotsError as error:
            if problems is not None:
                problems.append(f"{name + ' / ' if name else ''}fewshot n={n}: {error}")
            continue
        for run_seed, rows in samples:
            keep = np.zeros(data.n, dtype=bool)
            keep[rows] = True
            keep |= data.split == "test"
            subset = data.subset(np.flatnonzero(keep))
            splits = Splits(subset, allow_test_reuse=allow_test_reuse)
            n_train = int(rows.size)
            tag = {"shots": n, "fewshot_seed": run_seed, "n_patients": int(np.unique(data.patients[rows]).size)}
            for probe in probes:
                if probe == "knn":
                    if n_train < 2:
                        continue
                    outcome = evaluate_knn(
                        splits,
                        setting="fewshot-knn",
                        k=max(1, min(k, (n_train - 1) // 2)),
                        backend=knn_backend,
                        device=device,
                        seed=run_seed,
                        n_boot=n_boot,
                        test_name=("knn", n, run_seed),
                        hyper_extra={**tag, "selected_on": "fixed (few-shot: no validation)"},
                    )
                elif linear == "logistic":
                    outcome = evaluate_linear(
                        splits,
                        setting="fewshot-linear",
                        backend="sklearn",
                        config=LinearConfig(1, False, C=C),
                        seed=run_seed,
                        n_boot=n_boot,
                        test_name=("linear", n, run_seed),
                        hyper_extra={**tag, "probe": "logistic_regression", "solver": "lbfgs", "selected_on": "fixed (few-shot: no validation)"},
                    )
                else:
                    outcome = evaluate_linear(
                        splits,
                        setting="fewshot-linear",
                        backend="torch",
                        device=device,
                        config=LinearConfig(1, False, lr=lr),
                        epochs=epochs,
                        batch_size=batch_size,
                        seed=run_seed,
                        n_boot=n_boot,
                        test_name=("linear", n, run_seed),
                        hyper_extra={**tag, "probe": "sgd_linear_layer", "selected_on": "fixed (few-shot: no validation)"},
                    )
                outcome.hyperparameters = {key: v for key, v in outcome.hyperparameters.items() if key != "retrained_on"}
                outcome.extra = {**outcome.extra, "shots": n, "fewshot_seed": run_seed}
                outcomes.append(outcome)
                runs.append(_Run(probe, n, run_seed, outcome))
        for probe in probes:
            mine = [r for r in runs if r.probe == probe]
            if mine:
                outcomes.append(_aggregate(mine, data, n_boot=n_boot, seed=seed, allow_test_reuse=allow_test_reuse))
    return outcomes

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
  L2-regularised logistic regression (C = 1, last-layer CLS).
* Each (probe, n, seed) is scored on test once; an aggregate per (probe, n) reports the
  mean over seeds with the spread (standard deviation, min, max).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featx.evaluation.features import ProbeData, ProbeError
from featx.probes.linear import LinearConfig
from featx.evaluation.metrics import Scored
from featx.probes.protocol import Outcome, evaluate_knn, evaluate_linear
from featx.evaluation.selection import Splits


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


@dataclass
class _Run:
    probe: str
    shots: int | str
    seed: int
    outcome: Outcome


def _aggregate(runs: list[_Run], data: ProbeData) -> Outcome:
    tests = [r.outcome.test for r in runs]
    macro = np.array([t.auroc_macro for t in tests], dtype=float)
    per_class = np.stack([t.auroc for t in tests])
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scored = Scored(
                label_names=list(data.label_names),
                auroc=np.nanmean(per_class, 0),
                auroc_ci=np.nanmean(np.stack([t.auroc_ci for t in tests]), 0),
                auroc_macro=float(np.nanmean(macro)),
                auroc_macro_ci=(
                    float(np.nanmean([t.auroc_macro_ci[0] for t in tests])),
                    float(np.nanmean([t.auroc_macro_ci[1] for t in tests])),
                ),
                n_rows=tests[0].n_rows,
                n_patients=tests[0].n_patients,
            )
            if tests[0].accuracy is not None:
                scored.accuracy = float(np.nanmean([t.accuracy for t in tests]))
                scored.accuracy_ci = (
                    float(np.nanmean([t.accuracy_ci[0] for t in tests])),
                    float(np.nanmean([t.accuracy_ci[1] for t in tests])),
                )
    first = runs[0].outcome
    hyper = {k: v for k, v in first.hyperparameters.items() if k not in ("fewshot_seed", "k")}
    return Outcome(
        setting=first.setting,
        method=first.method,
        hyperparameters={**hyper, "shots": runs[0].shots, "seeds": [r.seed for r in runs]},
        test=scored,
        n_train=int(np.mean([r.outcome.n_train for r in runs])),
        n_test=first.n_test,
        extra={
            "aggregate": "mean_over_seeds",
            "n_seeds": len(runs),
            "macro_std": float(np.nanstd(macro, ddof=1)) if len(runs) > 1 else 0.0,
            "macro_min": float(np.nanmin(macro)),
            "macro_max": float(np.nanmax(macro)),
            "macro_per_seed": [float(v) for v in macro],
            "ci_note": "ci_low/ci_high: mean over seeds of each seed's patient-bootstrap interval",
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
    seed: int = 0,
    device: str = "cpu",
    knn_backend: str | None = None,
    n_boot: int = 1000,
    val_boot: int = 0,
    problems: list[str] | None = None,
    name: str = "",
) -> list[Outcome]:
    """Per-seed outcomes and one aggregate per (probe, shots); skips impossible shot counts."""
    del val_boot  # nothing is selected on validation in few-shot
    outcomes: list[Outcome] = []
    bad = [p for p in probes if p not in ("knn", "linear")]
    if bad:
        raise ProbeError(f"unknown few-shot probe(s) {bad}; expected knn and/or linear")
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
            splits = Splits(subset)
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
                    )
                else:
                    outcome = evaluate_linear(
                        splits,
                        setting="fewshot-linear",
                        backend="sklearn",
                        config=LinearConfig(1, False, C=C),
                        seed=run_seed,
                        n_boot=n_boot,
                        test_name=("linear", n, run_seed),
                    )
                hyper = {key: v for key, v in outcome.hyperparameters.items() if key != "retrained_on"}
                outcome.hyperparameters = {**hyper, **tag, "selected_on": "fixed (few-shot: no validation)"}
                outcome.extra = {**outcome.extra, "shots": n, "fewshot_seed": run_seed}
                outcomes.append(outcome)
                runs.append(_Run(probe, n, run_seed, outcome))
        for probe in probes:
            mine = [r for r in runs if r.probe == probe]
            if mine:
                outcomes.append(_aggregate(mine, data))
    return outcomes

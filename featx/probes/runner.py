"""``run_probes``: every requested setting on every requested store, records appended as it goes.

A problem with one store or one setting (no validation split, a label without
positives, more shots than patients, label names that differ from the results already
in the output file) is reported with a clear message and the run goes on with the
rest; :attr:`ProbeRun.problems` lists them.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featx.cache.select import AmbiguousStore, StoreFacts, StorePick, select_store
from featx.probes import knn as knn_mod
from featx.probes import linear as linear_mod
from featx.evaluation.features import ProbeData, ProbeError, load_probe_data
from featx.evaluation.ledger import LEDGER, TestReuseWarning
from featx.evaluation.metrics import MetricWarning
from featx.probes.protocol import Outcome, evaluate_knn, evaluate_linear
from featx.evaluation.records import append_jsonl, check_label_names, finalise, make_base, read_jsonl, scored_records
from featx.evaluation.selection import Splits, check_patient_split
from featx.probes.smallsets import small_set_warnings

log = logging.getLogger("featx.probes")

SETTINGS = ("knn", "mlknn", "linear", "fewshot", "seg_linear", "seg_unet")  # seg_*: featx.probes.segmentation


@dataclass
class ProbeRun:
    """What a run produced: the records written, the outcomes, and what went wrong."""

    records: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def outcome_records(outcome: Outcome, provenance: dict[str, Any], data: ProbeData, seed: int, record_val: bool = True) -> list[dict[str, Any]]:
    """Records of one outcome: the test numbers, and the validation numbers of every candidate."""
    extra = {"method": outcome.method, "level": data.level, **outcome.extra}
    base = make_base(
        provenance=provenance,
        setting=outcome.setting,
        split="test",
        hyperparameters=outcome.hyperparameters,
        seed=seed,
        n_train=outcome.n_train,
        n_test=outcome.n_test,
        label_names=data.label_names,
        extra=extra,
    )
    records = scored_records(outcome.test, base)
    if record_val:
        selected = {k: v for k, v in outcome.hyperparameters.items() if k not in ("selected_on", "retrained_on")}
        for hyper, scored in outcome.val:
            val_base = {**base, "split": "val", "hyperparameters": hyper, "n_train": int((data.split == "train").sum()), "n_test": scored.n_rows}
            val_base.pop("test_reuse", None)
            val_base.pop("test_use", None)
            val_base["selected"] = all(selected.get(k) == v for k, v in hyper.items())
            records.extend(r for r in scored_records(scored, val_base) if r["metric"] == "auroc_macro")
    return records


def _open(store: Any):
    from featx.cache import FeatureStore

    return store if isinstance(store, FeatureStore) else FeatureStore.open(store)


def resolve_stores(
    stores: Sequence[Any] | None,
    cache: str | Path | None,
    datasets: Sequence[str],
    backbones: Sequence[str],
    problems: list[str],
    pick: StorePick | None = None,
) -> list[Any]:
    """Stores given directly, or the one store of each (dataset, backbone) under ``cache`` fitting ``pick``.

    An ambiguous pick (several stores fit) raises :class:`AmbiguousStore` before anything runs;
    a missing store is a problem and the run goes on with the others.
    """
    out = []
    for store in stores or []:
        try:
            out.append(_open(store))
        except Exception as error:  # noqa: BLE001 - reported, the run goes on
            problems.append(f"{store}: {error}")
    if cache is not None:
        for dataset in datasets:
            for backbone in backbones:
                try:
                    out.append(_open(select_store(cache, dataset, backbone, pick)))
                except AmbiguousStore:
                    raise
                except Exception as error:  # noqa: BLE001
                    problems.append(f"{dataset} x {backbone}: {error}")
    return out


def store_label(store: Any) -> str:
    """``dataset x backbone [key K, size S, weights W]``: the prefix of every line about a store."""
    return f"{store.attrs.get('dataset')} x {store.provenance().get('backbone')} [{StoreFacts.of(store.attrs).brief()}]"


def run_probes(
    stores: Sequence[Any] | None = None,
    *,
    cache: str | Path | None = None,
    datasets: Sequence[str] = (),
    backbones: Sequence[str] = (),
    settings: Sequence[str] = ("knn", "linear"),
    out: str | Path | None = None,
    device: str = "cpu",
    seed: int = 0,
    ks: Sequence[int] = knn_mod.DEFAULT_KS,
    k: int | None = None,
    temperature: float = knn_mod.TEMPERATURE,
    knn_vote: str = "dinov2",
    multilabel_knn: str = "mlknn",
    knn_backend: str | None = None,
    knn_dtype: str = "float32",
    mlknn_fit_max: int | None = None,
    linear_backend: str | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    lrs: Sequence[float] = linear_mod.LRS,
    shots: Sequence[int | str] = (1, 2, 4, 8, 16, "all"),
    fewshot_seeds: int = 5,
    fewshot_probes: Sequence[str] = ("knn", "linear"),
    fewshot_linear: str = "logistic",
    n_boot: int = 1000,
    val_boot: int = 200,
    record_val: bool = True,
    allow_test_reuse: bool = False,
    pick: StorePick | None = None,
    segmentation: Any = None,
    echo: Callable[[str], None] | None = None,
) -> ProbeRun:
    """Run ``settings`` on each store and append one record per number to ``out``.

    ``stores`` are store paths (or open stores); alternatively ``cache`` with
    ``datasets`` x ``backbones`` picks the one published store of each pair that fits
    ``pick`` (size, weights, patch tokens, key); several fitting is refused.
    Test scorings are checked against the test-use ledger, which also holds the test
    records already in ``out``: a test scored again with other hyper-parameters warns
    and its records carry ``test_reuse: n`` (``allow_test_reuse`` silences the warning).
    Segmentation stores go to :mod:`featx.probes.segmentation` (``segmentation``: its
    ``SegOptions``).
    """
    say = echo or log.info
    run = ProbeRun()
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise ProbeError(f"unknown setting(s) {unknown}; expected some of {SETTINGS}")
    opened = resolve_stores(stores, cache, datasets, backbones, run.problems, pick)
    existing = read_jsonl(out) if out is not None else []
    LEDGER.load_records(existing)
    for store in opened:
        if store.task == "segmentation":
            from featx.probes.segmentation.protocol import SegOptions
            from featx.probes.segmentation.runner import run_segmentation_store

            run_segmentation_store(
                store, settings, run=run, options=segmentation or SegOptions(), out=out, existing=existing,
                device=device, seed=seed, shots=shots, fewshot_seeds=fewshot_seeds, n_boot=n_boot,
                val_boot=val_boot, record_val=record_val, say=say,
            )
            continue
        name = store_label(store)
        try:
            check_label_names(existing, str(store.attrs.get("dataset")), store.label_names, out or "")
            index = store.index
            check_patient_split(index["patient_id"].to_numpy(), index["split"].to_numpy(), f"store {store.path}")
            del index
            need_grid = "linear" in settings or "fewshot" in settings
            n_blocks = 4 if need_grid else 1
            dims = store.attrs.get("feature_dims", {}) or {}
            dim = max(dims.values()) if dims else 1024
            big = store.n_rows * dim * (n_blocks + 1) * 4 > 1 << 30
            t0 = time.perf_counter()
            data = load_probe_data(store, n_last_blocks=n_blocks, avgpool=need_grid, dtype=np.float16 if big else np.float32)
            say(f"{name}: {data.n} {data.level}s loaded in {time.perf_counter() - t0:.1f}s" + (f" ({data.n_invalid} invalid rows left out)" if data.n_invalid else ""))
            if data.provenance.get("random_init"):
                say(f"{name}: features come from RANDOMLY INITIALISED weights; results are marked random_init=true")
            small = small_set_warnings(data)
            if small:
                say(f"{name}: warning: small evaluation set, read its numbers with care: {'; '.join(small)}")
        except Exception as error:  # noqa: BLE001 - one store's failure does not stop the others
            run.problems.append(f"{name}: {error}")
            say(f"{name}: skipped: {error}")
            continue
        for setting in settings:
            skipped: list[str] = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", MetricWarning)
                    warnings.simplefilter("always", TestReuseWarning)
                    t0 = time.perf_counter()
                    outcomes = _run_setting(
                        setting,
                        data,
                        device=device,
                        seed=seed,
                        ks=ks,
                        k=k,
                        temperature=temperature,
                        knn_vote=knn_vote,
                        multilabel_knn=multilabel_knn,
                        knn_backend=knn_backend,
                        knn_dtype=knn_dtype,
                        mlknn_fit_max=mlknn_fit_max,
                        linear_backend=linear_backend,
                        epochs=epochs,
                        batch_size=batch_size,
                        lrs=lrs,
                        shots=shots,
                        fewshot_seeds=fewshot_seeds,
                        fewshot_probes=fewshot_probes,
                        fewshot_linear=fewshot_linear,
                        allow_test_reuse=allow_test_reuse,
                        n_boot=n_boot,
                        val_boot=val_boot,
                        problems=skipped,
                        name=name,
                    )
                for message in counted(str(w.message) for w in caught if issubclass(w.category, MetricWarning)):
                    say(f"{name} / {setting}: warning: {message}")
                for message in counted(str(w.message) for w in caught if issubclass(w.category, TestReuseWarning)):
                    say(f"{name} / {setting}: WARNING: {message}")
                if outcomes:  # what could not be run (e.g. a shot count) is a note when the rest produced results
                    for message in counted(m.removeprefix(f"{name} / ") for m in skipped):
                        say(f"{name} / {setting}: note: skipped {message}")
                else:
                    run.problems.extend(skipped)
                records = []
                for outcome in outcomes:
                    records.extend(outcome_records(outcome, data.provenance, data, seed, record_val))
                for message in counted(f"{o.setting}: note: {note}" for o in outcomes for note in o.notes):
                    say(f"{name} / {message}")
                facts = asdict(StoreFacts.of(store.attrs))
                records = finalise({**record, "store": facts, "small_set_warnings": small} for record in records)
                if out is not None:
                    append_jsonl(out, records)
                run.records.extend(records)
                run.outcomes.extend(outcomes)
                for outcome in outcomes:
                    if "fewshot_seed" in outcome.extra:
                        continue  # one line per shot count (the mean over seeds), not one per seed
                    t = outcome.test
                    spread = f" ±{outcome.extra['macro_std']:.3f} sd over {outcome.extra['n_seeds']} seeds" if outcome.extra.get("aggregate") else ""
                    say(
                        f"{name} / {outcome.setting}: test macro AUROC {t.auroc_macro:.3f}{spread} "
                        f"[{t.auroc_macro_ci[0]:.3f}, {t.auroc_macro_ci[1]:.3f}] "
                        f"({_brief(outcome.hyperparameters)}) in {time.perf_counter() - t0:.1f}s"
                        + (f" [test re-used: test_reuse={outcome.extra['test_reuse']}]" if outcome.extra.get("test_reuse") else "")
                    )
            except (ProbeError, ValueError, RuntimeError) as error:
                run.problems.append(f"{name} / {setting}: {error}")
                say(f"{name} / {setting}: failed: {error}")
    return run


def counted(messages: Iterable[str]) -> list[str]:
    """Each distinct message once, in first-seen order, with ``(N times)`` when it repeated."""
    counts = Counter(messages)
    return [message if n == 1 else f"{message} ({n} times)" for message, n in counts.items()]


def _brief(hyper: dict[str, Any]) -> str:
    keys = ("method", "backend", "k", "lr", "C", "n_last_blocks", "avgpool", "shots", "fewshot_seed")
    return ", ".join(f"{k}={hyper[k]}" for k in keys if k in hyper)


def _run_setting(setting: str, data: ProbeData, *, problems: list[str], name: str, **kw: Any) -> list[Outcome]:
    common = {"seed": kw["seed"], "n_boot": kw["n_boot"], "val_boot": kw["val_boot"], "device": kw["device"]}
    knn_kw = {
        "ks": kw["ks"],
        "k": kw["k"],
        "temperature": kw["temperature"],
        "vote": kw["knn_vote"],
        "multilabel_method": kw["multilabel_knn"],
        "backend": kw["knn_backend"],
        "dtype": kw["knn_dtype"],
        "fit_max": kw["mlknn_fit_max"],
    }
    linear_kw = {"backend": kw["linear_backend"], "epochs": kw["epochs"], "batch_size": kw["batch_size"], "lrs": kw["lrs"]}
    if setting.startswith("seg_"):
        raise ProbeError(f"{setting} needs a segmentation store (patch tokens and masks); this is a {data.task} dataset")
    reuse = kw["allow_test_reuse"]
    if setting in ("knn", "mlknn"):
        return [evaluate_knn(Splits(data, allow_test_reuse=reuse), setting=setting, **knn_kw, **common)]
    if setting == "linear":
        return [evaluate_linear(Splits(data, allow_test_reuse=reuse), **linear_kw, **common)]
    if setting == "fewshot":
        from featx.probes.fewshot import evaluate_fewshot

        return evaluate_fewshot(
            data,
            shots=kw["shots"],
            n_seeds=kw["fewshot_seeds"],
            probes=kw["fewshot_probes"],
            problems=problems,
            name=name,
            knn_backend=kw["knn_backend"],
            linear=kw["fewshot_linear"],
            epochs=kw["epochs"],
            batch_size=kw["batch_size"],
            allow_test_reuse=reuse,
            **common,
        )
    raise ProbeError(f"unknown setting {setting!r}")

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
from featx.cache.store import FeatureStore
from featx.evaluation.analyses import classification_extras
from featx.evaluation.features import ProbeData, ProbeError, load_probe_data
from featx.evaluation.ledger import LEDGER, TestReuseWarning
from featx.evaluation.metrics import MetricWarning
from featx.evaluation.records import (
    append_jsonl,
    check_label_names,
    failure_record,
    finalise,
    make_base,
    read_jsonl,
    scored_records,
)
from featx.evaluation.selection import Splits, check_patient_split
from featx.jobs.checks import CheckError, check_device, folder_is_writable
from featx.jobs.outputs import check_results_file
from featx.probes.ann import ApproxIndex
from featx.probes.job import ProbeJob
from featx.probes.protocol import Outcome, evaluate_knn, evaluate_linear
from featx.probes.smallsets import small_set_warnings

log = logging.getLogger("featx.probes")



@dataclass
class ProbeRun:
    """What a run produced: the records written, the outcomes, and what went wrong."""

    records: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # failure records: a setting asked, nothing made

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


def _open(store: str | FeatureStore) -> FeatureStore:
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


def store_label(store: FeatureStore) -> str:
    """``dataset x backbone [key K, size S, weights W]``: the prefix of every line about a store."""
    return f"{store.dataset} x {store.backbone_name} [{StoreFacts.of(store.attrs).brief()}]"


def run_probes(job: ProbeJob, echo: Callable[[str], None] | None = None, *, write: bool = True) -> ProbeRun:
    """Run ``job.settings`` on each of the job's stores and append one record per number to ``job.out``.

    Stores are ``job.stores`` (paths or URLs), or under ``job.cache`` the one published store of
    each ``job.datasets`` x ``job.backbones`` pair fitting the job's pick (size, weights, patch
    tokens, key); several fitting is refused. Test scorings are checked against the test-use
    ledger, which also holds the test records already in ``job.out``: a test scored again with
    other hyper-parameters warns and its records carry ``test_reuse: n`` (``allow_test_reuse``
    silences the warning). Segmentation stores go to :mod:`featx.probes.segmentation`. A store or
    setting that fails is listed in :attr:`ProbeRun.problems` and, with ``job.out``, written there as
    a failure record; the other stores and settings go on. With ``write=False`` nothing is appended
    (``job.out`` is still read for the ledger): the caller appends ``run.records`` and ``run.failures``.
    """
    say = echo or log.info
    preflight(job)
    if job.scheduler is not None and write:
        from distributed import Client

        from featx.probes.grid import run_probe_grid

        with Client(job.scheduler) as client:
            return run_probe_grid([job], client, echo=say)[0]
    run = ProbeRun()
    out = job.out if write else None
    pick = StorePick(key=job.key, size=job.size, weights=job.weights, patch_tokens=job.patch_tokens)
    opened = resolve_stores(job.stores, job.cache, job.datasets, job.backbones, run.problems, pick)
    for problem in run.problems:
        write_failure(run, out, job, None, job.settings, problem)
    existing = read_jsonl(job.out) if job.out is not None else []
    LEDGER.load_records(existing)
    for store in opened:
        if store.task == "segmentation":
            from featx.probes.segmentation.runner import run_segmentation_store

            run_segmentation_store(store, job, run=run, existing=existing, out=out, say=say)
            continue
        name = store_label(store)
        try:
            check_label_names(existing, store.dataset, store.label_names, job.out or "")
            index = store.index
            check_patient_split(index["patient_id"].to_numpy(), index["split"].to_numpy(), f"store {store.path}")
            del index
            need_grid = "linear" in job.settings or "fewshot" in job.settings
            n_blocks = 4 if need_grid else 1
            dims = store.feature_dims
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
            write_failure(run, out, job, store, job.settings, str(error))
            say(f"{name}: skipped: {error}")
            continue
        for setting in job.settings:
            skipped: list[str] = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", MetricWarning)
                    warnings.simplefilter("always", TestReuseWarning)
                    t0 = time.perf_counter()
                    outcomes = _run_setting(setting, data, job, problems=skipped, name=name)
                for message in counted(str(w.message) for w in caught if issubclass(w.category, MetricWarning)):
                    say(f"{name} / {setting}: warning: {message}")
                for message in counted(str(w.message) for w in caught if issubclass(w.category, TestReuseWarning)):
                    say(f"{name} / {setting}: WARNING: {message}")
                if outcomes:  # what could not be run (e.g. a shot count) is a note when the rest produced results
                    for message in counted(m.removeprefix(f"{name} / ") for m in skipped):
                        say(f"{name} / {setting}: note: skipped {message}")
                else:
                    run.problems.extend(skipped)
                    write_failure(run, out, job, store, [setting], "; ".join(skipped))
                records = []
                for outcome in outcomes:  # with the kept test predictions, calibration and subgroups (featx.evaluation.analyses)
                    records.extend(classification_extras(job.out, outcome_records(outcome, data.provenance, data, job.seed, job.val_records),
                                                         outcome.test_scores, data, n_boot=job.bootstrap))
                for message in counted(f"{o.setting}: note: {note}" for o in outcomes for note in o.notes):
                    say(f"{name} / {message}")
                facts = asdict(StoreFacts.of(store.attrs))
                records = finalise({**record, "store": facts, "small_set_warnings": small, **job.record_fields(setting)}
                                   for record in records)
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
                write_failure(run, out, job, store, [setting], str(error))
                say(f"{name} / {setting}: failed: {error}")
    return run


def preflight(job: ProbeJob) -> None:
    """What can be checked before any store is read: the device and the files and folders results go to."""
    check_device(job.device)
    if job.knn_index is not None:
        ApproxIndex.parse(job.knn_index)  # a bad spec is one sentence before any store is read
    if job.out is not None:
        check_results_file(job.out, option="--out")
    if job.save_masks is not None and not folder_is_writable(Path(job.save_masks)):
        raise CheckError(f"--save-masks: {job.save_masks} is not a writable folder; choose another folder")


def write_failure(
    run: ProbeRun, out: str | Path | None, job: ProbeJob, store: FeatureStore | None, settings: Sequence[str],
    reason: str,
) -> None:
    """Record that ``settings`` produced nothing on ``store`` (None: it could not be opened), in ``run``
    and, with ``out``, in the results file."""
    provenance = store.provenance() if store is not None else {}
    failures = [failure_record(setting=setting, reason=reason, provenance=provenance, seed=job.seed,
                               command=job.command_line()) for setting in settings]
    run.failures.extend(failures)
    if out is not None:
        append_jsonl(out, failures)


def counted(messages: Iterable[str]) -> list[str]:
    """Each distinct message once, in first-seen order, with ``(N times)`` when it repeated."""
    counts = Counter(messages)
    return [message if n == 1 else f"{message} ({n} times)" for message, n in counts.items()]


def _brief(hyper: dict[str, Any]) -> str:
    keys = ("method", "backend", "k", "lr", "C", "n_last_blocks", "avgpool", "shots", "fewshot_seed")
    return ", ".join(f"{k}={hyper[k]}" for k in keys if k in hyper)


def _run_setting(setting: str, data: ProbeData, job: ProbeJob, *, problems: list[str], name: str) -> list[Outcome]:
    common = {"seed": job.seed, "n_boot": job.bootstrap, "val_boot": job.val_bootstrap, "device": job.device}
    knn_kw = {
        "ks": job.ks,
        "k": job.k,
        "temperature": job.temperature,
        "vote": job.knn_vote,
        "multilabel_method": job.multilabel_knn,
        "backend": job.knn_backend,
        "dtype": job.knn_dtype,
        "fit_max": job.mlknn_fit_max,
        "index": ApproxIndex.parse(job.knn_index).beside(data.provenance) if job.knn_index else None,
    }
    linear_kw = {"backend": job.linear_backend, "epochs": job.epochs, "batch_size": job.batch_size, "lrs": job.lrs}
    if setting.startswith("seg_"):
        raise ProbeError(f"{setting} needs a segmentation store (patch tokens and masks); this is a {data.task} dataset")
    reuse = job.allow_test_reuse
    if setting in ("knn", "mlknn"):
        return [evaluate_knn(Splits(data, allow_test_reuse=reuse), setting=setting, **knn_kw, **common)]
    if setting == "linear":
        return [evaluate_linear(Splits(data, allow_test_reuse=reuse), **linear_kw, **common)]
    if setting == "fewshot":
        from featx.probes.fewshot import evaluate_fewshot

        return evaluate_fewshot(
            data,
            shots=job.shots,
            n_seeds=job.fewshot_seeds,
            probes=job.fewshot_probes,
            problems=problems,
            name=name,
            knn_backend=job.knn_backend,
            linear=job.fewshot_linear,
            epochs=job.epochs,
            batch_size=job.batch_size,
            allow_test_reuse=reuse,
            **common,
        )
    raise ProbeError(f"unknown setting {setting!r}")

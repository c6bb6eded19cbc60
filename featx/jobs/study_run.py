"""Running a study: every extraction, then every probe setting not yet done; one summary row per store.

A store version counts as probed per setting: a setting is done when the results file holds test
records of it for that store version made with the same probe options (``job_fingerprint``). A
setting that failed, or never ran because the run was killed, is run again on the next call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featx.jobs.study import Study, StudyJob

Echo = Callable[[str], None]


def _expected_errors() -> tuple[type[BaseException], ...]:
    from featx.backbones import WeightsError
    from featx.backbones.base import BackboneError
    from featx.cache import StoreError
    from featx.datasets import DatasetError

    return (DatasetError, StoreError, WeightsError, BackboneError, FileNotFoundError, ValueError, RuntimeError)


def extract_study(study: Study, echo: Echo = print) -> list[dict[str, Any]]:
    """Run every extraction of the study; one failure does not stop the rest. One row per store."""
    from featx.cache import FeatureStore
    from featx.pipeline.job import run_extract

    rows = []
    for job in study.jobs:
        echo(f"== {job.dataset} x {job.backbone} @ {job.size}")
        row = {"dataset": job.dataset, "backbone": job.backbone, "size": job.size}
        try:
            report = run_extract(job.extract, echo=echo)
        except _expected_errors() as exc:
            echo(f"error: {exc}")
            rows.append(row | {"extracted": 0, "unchanged": 0, "failed": 0, "state": f"FAILED: {exc}"[:120]})
            continue
        store = FeatureStore.open(report.path)
        version = store.provenance()["store_version"]
        rows.append(row | {
            "dataset": store.dataset,  # the adapter's own name (msd: one per task)
            "extracted": report.rows_extracted,
            "unchanged": report.n_rows if report.reused else report.rows_reused,
            "failed": len(report.failed) + len(report.quarantined),
            "state": f"up to date (v{version})" if report.reused else f"published v{version}",
        })
    return rows


def done_settings(out: Path | None, key: str, version: int | None, fingerprint: str) -> set[str]:
    """The settings whose test records for this store version and these probe options are in ``out``."""
    from featx.evaluation.records import read_jsonl

    if out is None:
        return set()
    return {
        record["job_setting"] for record in read_jsonl(out)
        if record.get("store_key") == key and record.get("store_version") == version
        and record.get("split") == "test" and record.get("job_fingerprint") == fingerprint and "job_setting" in record
    }


def _latest_store(stores: Any, job: StudyJob) -> Any:
    """The newest published store of the job's dataset, backbone and size (None: not extracted)."""
    if not len(stores):
        return None
    match = stores[(stores["dataset"] == job.dataset) & (stores["backbone"] == job.backbone)
                   & (stores["img_size"] == job.size) & (stores["state"] == "published")]
    return None if match.empty else match.sort_values("completed").iloc[-1]


def probe_study(study: Study, echo: Echo = print, scheduler: str | None = None) -> list[dict[str, Any]]:
    """Run, on every store of the study, the probe settings not yet done at its current version.

    With ``scheduler`` (or one among the study's probe options), every (store, setting) left to do
    goes to that Dask cluster at once; this process alone appends the records.
    """
    from featx.cache.inventory import list_stores

    stores = list_stores(study.cache)
    rows, todo = [], []
    for job in study.jobs:
        row = {"dataset": job.dataset, "backbone": job.backbone, "size": job.size}
        rows.append(row)
        if job.probe is None:
            row |= {"records": 0, "state": "not probed (probe: false)"}
            continue
        store = _latest_store(stores, job)
        if store is None:
            row |= {"records": 0, "state": "FAILED: no published store (run featx extract --config first)"}
            continue
        probe = dataclasses.replace(job.probe, stores=(str(store["path"]),), cache=None, datasets=(), backbones=(),
                                    size=None)
        done = done_settings(probe.out, store["key"], store["version"], probe.fingerprint())
        settings = tuple(setting for setting in probe.settings if setting not in done)
        version = f"v{store['version']}"
        if not settings:
            row |= {"records": 0, "state": f"up to date ({version})"}
            continue
        todo.append((row, dataclasses.replace(probe, settings=settings, scheduler=scheduler or probe.scheduler),
                     f"probed {version}" + (f" ({', '.join(settings)})" if done else "")))
    for (row, _, probed), outcome in zip(todo, _run_all([job for _, job, _ in todo], echo), strict=True):
        if isinstance(outcome, BaseException):
            row |= {"records": 0, "state": f"FAILED: {outcome}"[:120]}
        else:
            state = f"FAILED: {'; '.join(outcome.problems)}"[:120] if outcome.problems else probed
            row |= {"records": len(outcome.records), "state": state}
    return rows


def _run_all(jobs: list[Any], echo: Echo) -> list[Any]:
    """Each job's ProbeRun (or the expected error that stopped it): on a Dask cluster when one is named."""
    from featx.probes.runner import run_probes

    scheduler = next((job.scheduler for job in jobs if job.scheduler), None)
    if scheduler is not None:
        from distributed import Client

        from featx.probes.grid import run_probe_grid

        with Client(scheduler) as client:
            return run_probe_grid([dataclasses.replace(job, scheduler=None) for job in jobs], client, echo=echo)
    outcomes: list[Any] = []
    for job in jobs:
        try:
            outcomes.append(run_probes(job, echo=echo))
        except _expected_errors() as exc:
            outcomes.append(exc)
    return outcomes

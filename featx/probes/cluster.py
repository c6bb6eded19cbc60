"""The probe grid on a Dask cluster: (store, setting) jobs on the workers, records written by this one process.

:func:`run_probes_on_cluster` resolves the job's stores here (each pinned to the version
published now), splits the job into one :class:`ProbeJob` per (store, setting) and runs
each on a worker with :func:`featx.probes.runner.run_probes`, reading the store from the
shared cache (a folder every worker mounts, or an ``s3://``/``http://`` URL). The records
come back to this process, which alone appends them to ``job.out``, in the order a local
run writes them (store by store, setting by setting), each job's records as soon as every
job before it is in. A worker that dies mid-job loses nothing: Dask runs the job again
elsewhere, and only the run that finishes returns records, so none is lost or written
twice. Workers run one probe at a time per process (the test-use ledger is per process):
start them with ``dask worker --nthreads 1 --nworkers N``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featx.cache.select import StorePick
from featx.evaluation.records import append_jsonl, failure_record, is_failure, read_jsonl
from featx.probes.job import ProbeJob
from featx.probes.runner import ProbeRun, resolve_stores, write_failure

_ONE_AT_A_TIME = threading.Lock()  # a worker's threads share the process-wide test-use ledger


@dataclasses.dataclass(frozen=True)
class GridJob:
    """One (store, setting) of the grid, and the earlier test records of its store (the ledger's memory)."""

    position: int
    job: ProbeJob
    earlier: tuple[str, ...]


def grid_jobs(job: ProbeJob, problems: list[str]) -> list[GridJob]:
    """The (store, setting) jobs of ``job``, in the order a local run takes them."""
    pick = StorePick(key=job.key, size=job.size, weights=job.weights, patch_tokens=job.patch_tokens)
    stores = resolve_stores(job.stores, job.cache, job.datasets, job.backbones, problems, pick)
    existing = read_jsonl(job.out) if job.out is not None else []
    grid = []
    for store in stores:
        earlier = tuple(json.dumps(r) for r in existing if r.get("store_key") == store.key)
        for setting in job.settings:
            one = dataclasses.replace(job, stores=(str(store.path),), cache=None, datasets=(), backbones=(), key=None,
                                      size=None, weights=None, patch_tokens=None, settings=(setting,), out=None)
            grid.append(GridJob(len(grid), one, earlier))
    return grid


def run_grid_job(grid_job: GridJob) -> tuple[list[dict[str, Any]], list[str]]:
    """On a worker: run one (store, setting) job; its records (and failure records) and problems."""
    from featx.evaluation.ledger import LEDGER
    from featx.probes.runner import run_probes

    with _ONE_AT_A_TIME, tempfile.TemporaryDirectory(prefix="featx-probe-") as folder:
        out = Path(folder) / "records.jsonl"
        out.write_text("".join(f"{line}\n" for line in grid_job.earlier))
        LEDGER.clear()
        run = run_probes(dataclasses.replace(grid_job.job, out=out))
        LEDGER.clear()
        lines = out.read_text().splitlines()[len(grid_job.earlier):]
    return [json.loads(line) for line in lines if line.strip()], list(run.problems)


def run_probes_on_cluster(job: ProbeJob, client: Any, echo: Callable[[str], None] | None = None,
                          progress: bool = False) -> ProbeRun:
    """Run ``job``'s (store, setting) grid on the workers of ``client`` (a ``distributed.Client``).

    Records are appended to ``job.out`` by this process only, in local-run order; the
    returned run holds them and every problem. ``progress`` shows a bar counting jobs.
    """
    from distributed import as_completed

    say = echo or (lambda _message: None)
    run = ProbeRun()
    grid = grid_jobs(job, run.problems)
    for problem in run.problems:
        write_failure(job.out, job, None, job.settings, problem)
    command = job.command_line()
    token = uuid.uuid4().hex[:12]
    futures = client.map(run_grid_job, grid, key=[f"featx-probe-{token}-{g.position}" for g in grid])
    position = {future.key: g.position for future, g in zip(futures, grid)}
    finished: dict[int, tuple[list[dict[str, Any]], list[str]]] = {}
    written = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(grid), unit="job", desc="probe grid")
    for future in as_completed(futures):
        where = position[future.key]
        grid_job = grid[where]
        try:
            finished[where] = future.result()
        except Exception as error:  # noqa: BLE001 - a job the cluster could not run (KilledWorker...) is a problem
            setting = grid_job.job.settings[0]
            reason = f"{grid_job.job.stores[0]} / {setting}: {type(error).__name__}: {error}"
            failure = failure_record(setting=setting, reason=reason, provenance={"store_path": grid_job.job.stores[0]},
                                     seed=job.seed, command=command)
            finished[where] = ([failure], [reason])
        if bar is not None:
            bar.update()
        while written in finished:  # everything before it is in: write it, in local-run order
            records, problems = finished.pop(written)
            records = [{**record, "command": command} for record in records]
            if job.out is not None and records:
                append_jsonl(job.out, records)
            run.records.extend(r for r in records if not is_failure(r))
            run.problems.extend(problems)
            for problem in problems:
                say(problem)
            written += 1
    if bar is not None:
        bar.close()
    return run

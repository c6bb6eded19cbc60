"""The probe grid on a Dask cluster: one task per (store, setting), one writer.

Each task is a :class:`ProbeJob` of one store and one setting, run on a worker with
``run_probes(..., write=False)``: the worker reads the store (from the shared cache or its URL)
and the results file (for the test-use ledger), and sends back its records. Only this process
appends them, in the grid's order (store by store, setting by setting, whatever order the tasks
finish in), so the file is the same as after a local run. A worker that dies mid-task has its
task re-run elsewhere by the scheduler; a task's records are appended once, when its result
arrives, so nothing is lost or written twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from featx.evaluation.records import append_jsonl
from featx.probes.job import ProbeJob
from featx.probes.runner import ProbeRun, resolve_stores, run_probes


def grid_units(job: ProbeJob) -> list[ProbeJob]:
    """The job split into (store, setting) jobs, in the order a local run does them."""
    from featx.cache.select import StorePick

    problems: list[str] = []
    pick = StorePick(key=job.key, size=job.size, weights=job.weights, patch_tokens=job.patch_tokens)
    stores = resolve_stores(job.stores, job.cache, job.datasets, job.backbones, problems, pick)
    if problems:
        from featx.evaluation.features import ProbeError

        raise ProbeError("; ".join(problems))
    return [
        dataclasses.replace(job, stores=(str(store.path),), settings=(setting,), cache=None, datasets=(),
                            backbones=(), scheduler=None)
        for store in stores for setting in job.settings
    ]


def run_unit(unit: ProbeJob) -> dict[str, Any]:
    """One (store, setting) task on a worker: its records, failure records, problems and messages."""
    messages: list[str] = []
    run = run_probes(unit, echo=messages.append, write=False)
    return {"records": run.records, "failures": run.failures, "problems": run.problems, "messages": messages}


def run_probe_grid(
    jobs: Sequence[ProbeJob], client: Any, echo: Callable[[str], None] | None = None, progress: bool = True
) -> list[ProbeRun]:
    """Run every (store, setting) of ``jobs`` on ``client``'s workers; append to each job's ``out`` here.

    Returns one run per job. Records say the command of the job they belong to (not of the task).
    Outcomes stay on the workers: :attr:`ProbeRun.outcomes` is empty.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    runs = [ProbeRun() for _ in jobs]
    units = [(number, unit) for number, job in enumerate(jobs) for unit in grid_units(job)]
    futures = {client.submit(run_unit, unit, pure=False): i for i, (_, unit) in enumerate(units)}
    done: dict[int, dict[str, Any]] = {}
    next_to_write = 0
    with tqdm(total=len(units), unit="jobs", desc="probe (dask)", disable=not progress) as bar:
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            bar.update(1)
            while next_to_write in done:  # append in the grid's order, as soon as the order allows
                number = units[next_to_write][0]
                _collect(runs[number], jobs[number], done.pop(next_to_write), echo)
                next_to_write += 1
    return runs


def _collect(run: ProbeRun, job: ProbeJob, result: dict[str, Any], echo: Callable[[str], None] | None) -> None:
    command = job.command_line()
    records = [{**record, "command": command} for record in result["records"]]
    failures = [{**failure, "command": command} for failure in result["failures"]]
    if job.out is not None:
        append_jsonl(job.out, records + failures)
    for message in result["messages"]:
        if echo is not None:
            echo(message)
    run.records.extend(records)
    run.failures.extend(failures)
    run.problems.extend(result["problems"])

"""``featx probe``: flags (or a study file) -> ProbeJob -> featx.probes.runner.run_probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from featx.cli.errors import EXIT_ERROR, EXIT_PARTIAL
from featx.cli.jobs import build_job, job_command
from featx.probes.job import ProbeJob


def _run(flags: dict[str, Any], config: Path | None) -> None:
    if config is not None:
        from featx.cli.study import probe_study

        return probe_study(config, scheduler=flags.get("scheduler"))
    if flags.get("out") is None:
        raise typer.BadParameter("give --out RESULTS.jsonl (or --config STUDY.yaml)")
    from featx.probes.runner import run_probes

    job = build_job(ProbeJob, flags)
    run = run_probes(job, echo=lambda message: typer.echo(message, err=True))
    typer.echo(f"{len(run.records)} records appended to {job.out}")
    if run.problems:
        typer.echo(f"{len(run.problems)} problem(s):", err=True)
        for problem in run.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(EXIT_ERROR if not run.records else EXIT_PARTIAL)
    return None


probe_command = job_command(
    ProbeJob, _run, "Run probes on cached features only (no backbone is loaded) and append results to --out.",
    config_help="a study YAML: probe every store of it not yet probed at its current version",
)

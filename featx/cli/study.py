"""`featx extract --config` / `featx probe --config`: every store of a study, one summary at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from featx.cli.errors import EXIT_ERROR


def _summary(rows: list[dict[str, Any]], what: str) -> None:
    import pandas as pd

    typer.echo(f"\n{what}: {len(rows)} stores")
    typer.echo(pd.DataFrame(rows).to_string(index=False))
    failed = [row for row in rows if row["state"].startswith("FAILED")]
    if failed:
        typer.secho(f"{len(failed)} of {len(rows)} failed (the others are done)", fg=typer.colors.RED)
        raise typer.Exit(EXIT_ERROR)


def extract_study(config: Path) -> None:
    """Every extraction of the study, then the summary table."""
    from featx.jobs.study import load_study
    from featx.jobs.study_run import extract_study as run

    study = load_study(config)
    _summary(run(study, echo=typer.echo), f"featx extract --config {study.path}")


def probe_study(config: Path, scheduler: str | None = None) -> None:
    """Every probe setting of the study not yet done at each store's current version, then the summary.

    ``scheduler`` (`--scheduler`): a Dask cluster for every (store, setting) left to do.
    """
    from featx.jobs.study import StudyError, load_study
    from featx.jobs.study_run import probe_study as run

    study = load_study(config)
    if study.out is None and any(job.probe is not None for job in study.jobs):
        raise StudyError(f"{study.path}: probe needs 'out' (the results file) for `featx probe --config`")
    rows = run(study, echo=lambda message: typer.echo(message, err=True), scheduler=scheduler)
    _summary(rows, f"featx probe --config {study.path}")

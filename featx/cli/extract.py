"""`featx extract`: flags (or a study file) -> ExtractJob(s) -> featx.pipeline.job.run_extract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from featx.cli.errors import EXIT_PARTIAL
from featx.cli.jobs import build_job, job_command
from featx.pipeline.job import ExtractJob


def _run(flags: dict[str, Any], config: Path | None) -> None:
    if config is not None:
        from featx.cli.study import extract_study

        return extract_study(config)
    from featx.pipeline.job import run_extract

    report = run_extract(build_job(ExtractJob, flags), echo=typer.echo)
    if report.partial:
        raise typer.Exit(EXIT_PARTIAL)
    return None


extract_command = job_command(
    ExtractJob, _run, "Extract features of every sample (and slice) once into a Zarr feature store.",
    config_help="A study YAML (datasets x backbones x sizes): extract every store, one summary.",
)

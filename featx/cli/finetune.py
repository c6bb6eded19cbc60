"""`featx finetune`: flags -> FinetuneJob -> featx.finetune.job.run_finetune (backbone in the training loop
under a classification head or a segmentation decoder, or a segmentation baseline trained from scratch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from featx.cli.jobs import build_job, job_command
from featx.finetune.job import FinetuneJob


def _headline(run: Any) -> str:
    """``setting: test metric value [low, high]; best val ...; trainable ...``: the line a run ends with."""
    headline = next(r for r in run.records if r["metric"] in ("auroc_macro", "dice_jaccard_mean"))

    def number(key: str) -> str:
        return "n/a" if headline[key] is None else f"{headline[key]:.4f}"

    return (f"{headline['setting']}: test {headline['metric']} {number('value')} "
            f"[{number('ci_low')}, {number('ci_high')}]; best val {run.result.best_score:.4f} at epoch "
            f"{run.result.best_epoch + 1}; trainable {run.trainable_params:,} of {run.total_params:,} parameters")


def _run(flags: dict[str, Any], config: Path | None) -> None:
    from featx.finetune.job import run_finetune

    job = build_job(FinetuneJob, flags)
    run = run_finetune(job, echo=lambda message: typer.echo(message, err=True))
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports (and writes records)
        return
    for failure in run.failures[:20]:
        typer.secho(f"failed row: {failure}", fg=typer.colors.RED, err=True)
    if run.source.get("pixel_source") == "pixel_store":
        typer.echo(f"pixels: read from the pixel store {run.source['pixel_store']}")
    else:
        typer.echo(f"pixels: decoded from the raw files ({run.source.get('pixel_note')})")
    typer.echo(_headline(run))
    typer.echo(f"{len(run.records)} records appended to {job.out}")


finetune_command = job_command(
    FinetuneJob, _run, "Fine-tune a backbone with a classification head or a segmentation decoder, or train a "
    "segmentation baseline from scratch.",
)

"""`featx report`: results (JSON lines) -> a markdown table and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_command(
    results: list[Path] = typer.Argument(..., help="One or more RESULTS.jsonl files."),
    out: Optional[Path] = typer.Option(None, help="Folder for report.md, summary.png and (with few-shot results) fewshot.png."),
    metric: str = typer.Option("auroc_macro", help="Metric to tabulate."),
) -> None:
    """Print the datasets x backbones x settings table; write it (and a plot) to --out."""
    from featx.report import load_records, plot_fewshot, plot_summary, summary_table

    records = load_records(results)
    table = summary_table(records, metric)
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(table + "\n")
        figures = [plot_summary(records, out / "summary.png", metric), plot_fewshot(records, out / "fewshot.png", metric)]
        written = [str(out / "report.md")] + [str(f) for f in figures if f is not None]
        typer.echo("\nwrote " + ", ".join(written))

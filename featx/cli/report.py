"""`featx report`: results (JSON lines) -> a markdown table and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_command(
    results: list[Path] = typer.Argument(..., help="One or more RESULTS.jsonl files."),
    out: Optional[Path] = typer.Option(None, help="Folder for report.md and summary.png."),
    metric: str = typer.Option("auroc_macro", help="Metric to tabulate."),
) -> None:
    """Print the datasets x backbones x settings table; write it (and a plot) to --out."""
    from featx.report import load_records, plot_summary, summary_table

    records = load_records(results)
    table = summary_table(records, metric)
    typer.echo(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(table + "\n")
        figure = plot_summary(records, out / "summary.png", metric)
        typer.echo(f"\nwrote {out / 'report.md'}" + (f" and {figure}" if figure else ""))

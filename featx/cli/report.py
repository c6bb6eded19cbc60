"""`featx report`: results (JSON lines) -> the paper's tables and figures, and one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_command(
    results: list[Path] = typer.Argument(..., help="One or more RESULTS.jsonl files."),
    out: Optional[Path] = typer.Option(
        None, help="Folder for report.html, report.md, tables.csv and figures/ (PNG + SVG); without it, print the tables."
    ),
    metric: Optional[str] = typer.Option(
        None, help="Metric to tabulate (default: auroc_macro for classification, Dice/Jaccard for segmentation)."
    ),
    store: Optional[list[Path]] = typer.Option(
        None, "--store", help="Feature store(s) for Figure 2 (PCA of patch tokens; extract with --patch-tokens) and Figure 6."
    ),
    masks: Optional[list[Path]] = typer.Option(
        None, "--masks", help="Predicted-mask folder(s) (what --save-masks wrote; one sub-folder per decoder) for Figure 6."
    ),
    samples: int = typer.Option(4, min=1, help="Samples per store shown in Figures 2 and 6."),
) -> None:
    """Print the paper-shaped tables; with --out also write figures, CSV and one HTML page to mail around."""
    if out is None:
        from featx.report import load_records, summary_table

        typer.echo(summary_table(load_records(results), metric))
        return
    from featx.report.build import build_report

    report = build_report(results, out, metric=metric, stores=store or [], masks=masks or [], samples=samples)
    typer.echo(report.text)
    typer.echo(f"wrote {report.markdown}, {report.csv}, {report.out / 'figures'}/")
    typer.echo(f"open  {report.html}")

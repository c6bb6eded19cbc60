"""`featx report`: results (JSON lines) -> the paper's tables and figures, and one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report_command(
    results: Annotated[list[Path], typer.Argument(help="One or more RESULTS.jsonl files.")],
    out: Annotated[Path | None, typer.Option(
        help="Folder for report.html, report.md, tables.csv and figures/ (PNG + SVG), replaced in whole (a new "
        "folder, or one holding only an earlier report); without it, print the tables."
    )] = None,
    metric: Annotated[str | None, typer.Option(
        help="Metric to tabulate (default: auroc_macro for classification, Dice/Jaccard for segmentation)."
    )] = None,
    store: Annotated[list[Path] | None, typer.Option(
        "--store", help="Feature store(s) for Figure 2 (PCA of patch tokens; extract with --patch-tokens) and Figure 6."
    )] = None,
    masks: Annotated[list[Path] | None, typer.Option(
        "--masks", help="Predicted-mask folder(s) (what --save-masks wrote; one sub-folder per decoder) for Figure 6."
    )] = None,
    samples: Annotated[int, typer.Option(min=1, help="Samples per store shown in Figures 2 and 6.")] = 4,
    reference: Annotated[str | None, typer.Option(
        help="Paired comparisons of each model against this backbone only (default: every pair)."
    )] = None,
) -> None:
    """Print the paper-shaped tables; with --out also write figures, CSV and one HTML page to mail around.

    The report replaces the folder --out in whole (written beside it, then switched in), so
    --out must be new or hold only an earlier report; it is checked before any work.
    """
    if out is None:
        return _print_tables(results, metric)
    from featx.jobs.outputs import check_report_folder

    check_report_folder(out)
    from featx.report.build import build_report

    report = build_report(results, out, metric=metric, stores=store or [], masks=masks or [], samples=samples,
                          reference=reference)
    typer.echo(report.text)
    typer.echo(f"wrote {report.markdown}, {report.csv}, {report.out / 'figures'}/")
    typer.echo(f"open  {report.html}")


def _print_tables(results: list[Path], metric: str | None) -> None:
    """The summary tables on the terminal (what was left out of the files said on stderr)."""
    from featx.report import summary_table
    from featx.report.records import load_results

    loaded = load_results(results)
    for note in loaded.notes:
        typer.echo(f"warning: {note}", err=True)
    typer.echo(summary_table(loaded.frame, metric))

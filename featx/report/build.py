"""`build_report`: result records (and optionally stores and mask folders) -> markdown, CSV, figures, one HTML page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from featx.report.experiments import collect
from featx.report.failures import failures_table, load_failures, open_failures
from featx.report.figures import Figure, Missing, decoder_comparison, fewshot_curves, linear_bars, rank_figure
from featx.report.html import render_html
from featx.report.images import decoder_folders, mask_figure, pca_figure
from featx.report.ranks import cross_task_ranks
from featx.report.records import load_records
from featx.report.tables import (
    LEGEND,
    adaptation_table,
    cells_csv,
    fewshot_tables,
    hyperparameter_table,
    rank_table,
    section_tables,
    to_markdown,
)


@dataclass
class Report:
    """What `build_report` wrote."""

    out: Path
    markdown: Path
    csv: Path
    html: Path
    figures: list[Figure]
    text: str  # the markdown, for printing
    problems: list[str]


def _check_inputs(out: Path, stores: Sequence[Path], masks: Sequence[Path]) -> None:
    """Refuse bad paths before any work: a file where the folder should be, a missing store or mask folder."""
    from featx.cache import FeatureStore

    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file; give --out a folder for the report")
    for store in stores:
        FeatureStore.open(store)
    decoder_folders(list(masks))


def _figure_markdown(figure: Figure, out: Path) -> str:
    if isinstance(figure, Missing):
        return f"**{figure.title}**: not drawn: {figure.reason}."
    text = f"**{figure.title}**\n\n![{figure.title}]({figure.png.relative_to(out)}) (SVG: {figure.svg.relative_to(out)})"
    return text + (f"\n\n{figure.note}" if figure.note else "")


def build_report(
    results: Sequence[str | Path],
    out: str | Path,
    *,
    metric: str | None = None,
    stores: Sequence[str | Path] = (),
    masks: Sequence[str | Path] = (),
    samples: int = 4,
) -> Report:
    """Write report.md, tables.csv, figures/*.png|svg and report.html under ``out``."""
    from featx import __version__

    out = Path(out)
    stores = [Path(s) for s in stores]
    masks = [Path(m) for m in masks]
    records = load_records(results)
    _check_inputs(out, stores, masks)
    out.mkdir(parents=True, exist_ok=True)
    experiments = collect(records, metric)
    ranks = cross_task_ranks(experiments.cells)
    tables = section_tables(experiments, records) + fewshot_tables(experiments)
    for extra in (adaptation_table(experiments), rank_table(ranks)):
        if extra is not None:
            tables.append(extra)
    details = [t for t in (hyperparameter_table(experiments, records),) if t is not None]  # after the figures
    failed = failures_table(open_failures(load_failures(results), records))
    figure_dir = out / "figures"
    figures = [
        rank_figure(ranks, figure_dir),
        pca_figure(stores, figure_dir, samples),
        linear_bars(experiments, figure_dir),
        decoder_comparison(experiments, figure_dir),
        fewshot_curves(experiments, figure_dir),
        mask_figure(stores, masks, figure_dir, samples),
    ]
    parts = ["# featx report"]
    if "random" in experiments.headline and experiments.headline["random"].any():
        parts.append("> **RANDOM WEIGHTS**: rows marked '(random weights)' come from randomly initialised backbones: "
                     "not a model comparison.")
    if experiments.problems:
        parts.append("## Problems\n\n" + "\n".join(f"- {p}" for p in experiments.problems))
    parts += [to_markdown(failed)]
    parts += ["## Tables"] + ([to_markdown(t) for t in tables] or ["No test-split headline results to tabulate."])
    parts += [LEGEND, "## Figures"] + [_figure_markdown(f, out) for f in figures]
    parts += ["## Details"] + [to_markdown(t) for t in details] if details else []
    text = "\n\n".join(parts) + "\n"
    markdown, csv, page = out / "report.md", out / "tables.csv", out / "report.html"
    markdown.write_text(text)
    cells_csv(experiments).to_csv(csv, index=False)
    page.write_text(render_html(tables=tables, figures=figures, problems=experiments.problems, records=records, failed=failed, details=details,
                                sources=[str(r) for r in results], version=__version__, csv_text=csv.read_text()))
    return Report(out, markdown, csv, page, figures, text, experiments.problems)

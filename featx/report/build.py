"""`build_report`: result records (and optionally stores and mask folders) -> markdown, CSV, figures, one HTML page,
written beside the earlier report and switched in whole."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from featx.report.analyses import calibration_tables, reliability_figure, subgroup_table
from featx.report.comparisons import compare_results, write_comparisons
from featx.report.experiments import collect
from featx.report.failures import failures_table, load_failures, open_failures
from featx.report.figures import (
    Drawn,
    Figure,
    Missing,
    decoder_comparison,
    fewshot_curves,
    linear_bars,
    rank_figure,
)
from featx.report.html import render_html
from featx.report.images import decoder_folders, mask_figure, pca_figure
from featx.report.marks import with_tested_marks
from featx.report.publish import staged
from featx.report.ranks import cross_task_ranks
from featx.report.records import Loaded, load_results
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


def _check_inputs(stores: Sequence[Path], masks: Sequence[Path]) -> None:
    """Refuse bad inputs before any work: a missing store or mask folder."""
    from featx.cache import FeatureStore

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
    reference: str | None = None,
) -> Report:
    """Write report.md, tables.csv, figures/*.png|svg and report.html as the folder ``out``.

    The report is written into a new folder beside ``out`` and switched in whole (see
    :mod:`featx.report.publish`): a failure leaves the earlier report as it was. ``out``
    must be new or hold only an earlier report (checked first, before any work).
    ``reference``: compare each model against this backbone only (default: every pair).
    """
    from featx.jobs.outputs import check_report_folder

    out = Path(out)
    stores = [Path(s) for s in stores]
    masks = [Path(m) for m in masks]
    check_report_folder(out)
    loaded = load_results(results)
    _check_inputs(stores, masks)
    with staged(out) as stage:
        report = _write(loaded, results, stage, metric=metric, stores=stores, masks=masks, samples=samples, reference=reference)
    return _moved(report, stage, out)


def _moved(report: Report, stage: Path, out: Path) -> Report:
    """``report`` with its paths in the folder it was switched in as."""
    def there(path: Path) -> Path:
        return out / path.relative_to(stage)

    figures = [replace(f, png=there(f.png), svg=there(f.svg)) if isinstance(f, Drawn) else f for f in report.figures]
    return Report(out, there(report.markdown), there(report.csv), there(report.html), figures, report.text,
                  report.problems)


def _write(loaded: Loaded, results: Sequence[str | Path], out: Path, *, metric: str | None, stores: list[Path],
           masks: list[Path], samples: int, reference: str | None = None) -> Report:
    """Write the report's files into the (new, empty) folder ``out``."""
    from featx import __version__

    records = loaded.frame
    experiments = collect(records, metric)
    comparisons = compare_results(results, reference=reference)  # paired tests; they also set the best/tie marks
    experiments.cells = with_tested_marks(experiments.cells, comparisons.marks)
    experiments.problems.extend(comparisons.problems)
    ranks = cross_task_ranks(experiments.cells)
    tables = section_tables(experiments, records) + fewshot_tables(experiments)
    for extra in (adaptation_table(experiments), rank_table(ranks)):
        if extra is not None:
            tables.append(extra)
    tables += comparisons.tables + calibration_tables(records) + [t for t in [subgroup_table(records)] if t is not None]
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
    figures += [f for f in [reliability_figure(records, figure_dir)] if f is not None]
    parts = ["# featx report"]
    if "random" in experiments.headline and experiments.headline["random"].any():
        parts.append("> **RANDOM WEIGHTS**: rows marked '(random weights)' come from randomly initialised backbones: "
                     "not a model comparison.")
    problems = loaded.notes + experiments.problems
    if problems:
        parts.append("## Problems\n\n" + "\n".join(f"- {p}" for p in problems))
    parts += [to_markdown(failed)]
    parts += ["## Tables"] + ([to_markdown(t) for t in tables] or ["No test-split headline results to tabulate."])
    parts += [LEGEND, "## Figures"] + [_figure_markdown(f, out) for f in figures]
    parts += ["## Details"] + [to_markdown(t) for t in details] if details else []
    text = "\n\n".join(parts) + "\n"
    markdown, csv, page = out / "report.md", out / "tables.csv", out / "report.html"
    markdown.write_text(text)
    cells_csv(experiments).to_csv(csv, index=False)
    if comparisons.rows:
        write_comparisons(out / "comparisons.jsonl", comparisons)
    page.write_text(render_html(tables=tables, figures=figures, problems=problems, records=records, failed=failed,
                                details=details,
                                sources=[str(r) for r in results], version=__version__, csv_text=csv.read_text()))
    return Report(out, markdown, csv, page, figures, text, problems)

"""The paper's tables: datasets as columns, backbones as rows, settings as sections; markdown, HTML and CSV."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from featx.report.experiments import Experiments, collect, shots_sorted
from featx.report.marks import apply_tested_marks
from featx.report.ranks import Ranks, mark_best
from featx.report.trust import (
    WARNING_MARK,
    class_positives,
    column_support,
    hyperparameter_rows,
    warning_notes,
    warnings_of,
)

LEGEND = ("**bold**: best in its column; ≈: a tie: not significantly worse than the best by the paired test on the same "
          "test patients (Holm-corrected, see Paired comparison), or, for results without kept predictions, its 95% "
          "interval overlaps the best's; "
          "‡: the test split was scored more than once for this number (test_reuse); "
          "⚠: a small-set or low-support warning (listed under the table); "
          "n test: the patients / images (or volumes) each number rests on; "
          "conflict: several different runs fall in this cell; they are listed under Problems, not merged.")


@dataclass
class Cell:
    """One table cell: its text and marks."""

    text: str
    best: bool = False
    tied: bool = False


@dataclass
class Table:
    """A titled table: header, rows of cells (first cells are row labels), notes under it."""

    title: str
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)


def _number(value: float, low: float | None, high: float | None) -> str:
    text = f"{value:.3f}"
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def _cell(cell: pd.Series | None) -> Cell:
    if cell is None:
        return Cell("–")
    if cell.get("conflict"):
        return Cell(f"conflict ({int(cell['n_runs'])} runs)")
    if pd.isna(cell["value"]):
        return Cell("n/a")
    text = _number(float(cell["value"]), float(cell["ci_low"]), float(cell["ci_high"]))
    if cell.get("spread") is not None and not pd.isna(cell.get("spread")):
        text = text.replace(f"{float(cell['value']):.3f}", f"{float(cell['value']):.3f} ± {float(cell['spread']):.3f}", 1)
    if cell.get("test_reuse"):
        text += " ‡"
    if warnings_of(cell):
        text += f" {WARNING_MARK}"
    return Cell(text + (" ≈" if cell.get("tied") else ""), best=bool(cell.get("best")), tied=bool(cell.get("tied")))


def _lookup(cells: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.Series]:
    return {tuple(row[k] for k in keys): row for _, row in cells.iterrows()}


def _params(value: object, total: object) -> str:
    if value is None or pd.isna(value):
        return "–"
    text = f"{int(value):,}"
    if total is not None and not pd.isna(total) and float(total) > 0:
        text += f" ({100 * float(value) / float(total):.2f}%)"
    return text


def section_tables(experiments: Experiments, records: pd.DataFrame | None = None) -> list[Table]:
    """One table per setting (the paper's Tables 3-8 shape): models x datasets, best and ties marked (from the
    paired tests where predictions were kept), the test patients / images under each column, warnings and
    (multi-label, from ``records``) positives per class."""
    cells = apply_tested_marks(mark_best(experiments.cells))
    tables = []
    if cells.empty:
        return tables
    order = {"classification": 0, "segmentation": 1}
    sections = sorted(cells["section"].unique(), key=lambda s: (order[cells.loc[cells["section"] == s, "task"].iloc[0]], s))
    for section in sections:
        rows = cells[cells["section"] == section]
        columns = sorted(rows["column"].unique())
        models = sorted(rows["model"].unique())
        found = _lookup(rows, ["model", "column"])
        metric = ", ".join(dict.fromkeys(rows["metric"]))
        table = Table(
            title=f"{section}: test {metric} (95% patient-bootstrap interval)",
            header=["backbone", *columns],
            rows=[[Cell(m), *(_cell(found.get((m, c))) for c in columns)] for m in models],
        )
        support = [column_support(rows, c) for c in columns]
        if any(s != "–" for s in support):  # records that say what they rest on
            table.rows.append([Cell("n test (patients / images)"), *(Cell(s) for s in support)])
        backends = {h.get("backend") for h in rows["hyperparameters"] if h.get("backend")}
        if backends:
            table.notes.append(f"backend: {', '.join(sorted(backends))}")
        table.notes += warning_notes(rows) + class_positives(records, rows)
        tables.append(table)
    return tables


def fewshot_tables(experiments: Experiments) -> list[Table]:
    """Few-shot: per setting, rows (model, dataset), columns patients per class, mean ± spread over seeds."""
    cells = experiments.fewshot
    tables = []
    if cells.empty:
        return tables
    cells = mark_best(cells)
    for section in sorted(cells["section"].unique()):
        rows = cells[cells["section"] == section]
        shots = shots_sorted(rows["shots"])
        found = _lookup(rows, ["model", "column", "shots"])
        pairs = sorted({(r["column"], r["model"]) for _, r in rows.iterrows()})
        metric = ", ".join(dict.fromkeys(rows["metric"]))
        tables.append(Table(
            title=f"{section}: test {metric}, mean ± std over seeds [95% interval], by patients per class",
            header=["dataset", "backbone", *shots],
            rows=[[Cell(c), Cell(m), *(_cell(found.get((m, c, n))) for n in shots)] for c, m in pairs],
            notes=[f"n test: {c}: {n}" for c in sorted({c for c, _ in pairs}) if (n := column_support(rows, c)) != "–"]
            + warning_notes(rows),
        ))
    return tables


def adaptation_table(experiments: Experiments) -> Table | None:
    """Frozen probes beside fine-tuning (the paper's Table 9), with trainable-parameter counts, where any are recorded."""
    cells = mark_best(experiments.cells)
    if cells.empty or cells["trainable_params"].isna().all():
        return None
    models = set(cells.loc[cells["trainable_params"].notna(), "model"])
    rows = cells[cells["model"].isin(models) & (cells["task"] == "classification")]
    columns = sorted(rows["column"].unique())
    found = _lookup(rows, ["model", "section", "column"])
    body = []
    for model, section in sorted({(r["model"], r["section"]) for _, r in rows.iterrows()}):
        group = rows[(rows["model"] == model) & (rows["section"] == section)]
        params = group["trainable_params"].dropna()
        totals = group["total_params"].dropna()
        trainable = params.iloc[0] if len(params) else (0 if section.startswith("knn") or section.startswith("mlknn") else None)
        body.append([Cell(model), Cell(section), Cell(_params(trainable, totals.iloc[0] if len(totals) else None)),
                     *(_cell(found.get((model, section, c))) for c in columns)])
    return Table("Frozen probes and fine-tuning side by side (trainable parameters)",
                 ["backbone", "setting", "trainable params", *columns], body)


def rank_table(ranks: Ranks) -> Table | None:
    """Rank per dataset and the mean per task (Figure 1's numbers)."""
    if ranks.per_dataset.empty:
        return None
    columns = list(ranks.per_dataset.columns)
    tasks = list(ranks.mean.columns)
    rows = []
    for model in ranks.per_dataset.index:
        values = [ranks.per_dataset.loc[model, c] for c in columns] + [ranks.mean.loc[model, t] for t in tasks]
        rows.append([Cell(model), *(Cell("–" if pd.isna(v) else f"{v:g}") for v in values)])
    sections = ", ".join(f"{task}: {section}" for task, section in ranks.sections.items())
    return Table(f"Rank per dataset (1 = best) and mean rank per task (ranked: {sections})",
                 ["backbone", *columns, *(f"mean {t} rank" for t in tasks)], rows)


def hyperparameter_table(experiments: Experiments, records: pd.DataFrame) -> Table | None:
    """The hyper-parameters chosen on validation for every cell, and the grid they were chosen from."""
    found = hyperparameter_rows(experiments, records)
    if not found:
        return None
    header = ["setting", "dataset", "backbone", "chosen", "grid", "selected on", "configuration"]
    table = Table("Hyper-parameters: chosen on validation, from the grid", header,
                  [[Cell(row[h]) for h in header] for row in found])
    if experiments.fewshot is not None and not experiments.fewshot.empty:
        table.notes.append("Few-shot probes use fixed hyper-parameters (no validation): see each record.")
    return table


def to_markdown(table: Table) -> str:
    """A markdown table with its title and notes; best in bold."""
    def text(cell: Cell) -> str:
        return f"**{cell.text}**" if cell.best else cell.text

    lines = [f"### {table.title}", ""]
    if table.rows:  # a table without rows is its title and notes
        lines += ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
        lines += ["| " + " | ".join(text(c) for c in row) + " |" for row in table.rows]
    lines += [f"\n{note}" for note in table.notes]
    return "\n".join(lines)


def to_html(table: Table, text: Callable[[str], str] = str) -> str:
    """An HTML table; best cells get class ``best``, ties ``tied``; ``text`` rewrites each cell's and note's text."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = []
    for row in table.rows:
        cells = []
        for cell in row:
            marks = " ".join(m for m, on in (("best", cell.best), ("tied", cell.tied)) if on)
            shown = html.escape(text(cell.text))
            cells.append(f'<td class="{marks}">{shown}</td>' if marks else f"<td>{shown}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f'<p class="note">{html.escape(text(n))}</p>' for n in table.notes)
    grid = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>" if table.rows else ""
    return f"<h3>{html.escape(table.title)}</h3>{grid}{notes}"


CSV_COLUMNS = ["section", "task", "model", "backbone", "column", "dataset", "shots", "metric", "value", "ci_low",
               "ci_high", "spread", "best", "tied", "conflict", "test_reuse", "random", "trainable_params",
               "total_params", "store_key", "n_test", "n_patients"]


def cells_csv(experiments: Experiments) -> pd.DataFrame:
    """Every cell of every table as one long CSV-ready frame, best and ties marked."""
    parts = [apply_tested_marks(mark_best(f)) for f in (experiments.cells, experiments.fewshot) if not f.empty]
    if not parts:
        return pd.DataFrame(columns=CSV_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    for column in CSV_COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame[CSV_COLUMNS]


def summary_table(records: pd.DataFrame, metric: str | None = None) -> str:
    """Every table of the report as markdown (what `featx report` prints)."""
    experiments = collect(records, metric)
    tables = section_tables(experiments, records) + fewshot_tables(experiments)
    extra = adaptation_table(experiments)
    if extra is not None:
        tables.append(extra)
    if not tables:
        return "No test-split headline records to report (" + (f"metric {metric!r}" if metric else "AUROC or Dice/Jaccard") + ")."
    parts = [to_markdown(t) for t in tables] + [LEGEND]
    if experiments.headline["random"].any():
        parts.append("Rows marked '(random weights)' come from randomly initialised backbones: not a model comparison.")
    if experiments.problems:
        parts.append("Problems:\n" + "\n".join(f"- {p}" for p in experiments.problems))
    return "\n\n".join(parts)

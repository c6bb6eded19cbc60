"""The report's paired comparisons: every pair of models (or each against ``--reference``) on the same test set.

Scorings are grouped by dataset, setting (and few-shot shots and seed) and test set (the
``test_set`` of their kept predictions); within a group each model's newest scoring counts.
A table per group gives A - B of the headline with its paired patient-bootstrap interval, p
and Holm-adjusted p (the family: that table's rows); classification adds DeLong's test per
class (Holm over that table's rows), segmentation the per-patient differences. Records of one
dataset and setting scored on different test sets are not compared: the report says so.

The report's best/tie marks come from the same tests: in each group the best model is the one
with the highest headline, and a model is tied with it when the paired test against the best
(Holm over the best-vs-other comparisons of the group) has adjusted p >= 0.05.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featx.evaluation import compare, predictions
from featx.evaluation.records import read_jsonl
from featx.report.tables import Cell, Table

ALPHA = 0.05
HEADLINES = {"auroc_macro": "macro AUROC", "dice_jaccard_mean": "Dice/Jaccard mean (per unit)"}


@dataclass
class Scoring:
    """One test scoring with kept predictions."""

    label: str
    record: dict[str, Any]
    results: Path


@dataclass
class Comparisons:
    """What the report shows and records of the paired comparisons."""

    tables: list[Table] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per comparison, written to comparisons.jsonl
    marks: dict[str, str] = field(default_factory=dict)  # prediction id -> "best" | "tied" | "worse"
    problems: list[str] = field(default_factory=list)


def _label(record: dict[str, Any]) -> str:
    name = str(record.get("backbone"))
    return name + (" (random weights)" if record.get("random_init") else "")


def _is_headline(record: dict[str, Any]) -> bool:
    return (record.get("split") == "test" and record.get("metric") in HEADLINES and record.get("class") is None
            and not str(record.get("aggregation") or "").startswith("all_") and not record.get("aggregate")
            and isinstance(record.get("predictions"), dict))


def scorings(results: Sequence[str | Path]) -> dict[tuple, dict[str, list[Scoring]]]:
    """(dataset, setting, shots, seed) -> test set -> the newest scoring of each model."""
    newest: dict[tuple, dict[str, dict[str, Scoring]]] = {}
    for path in results:
        for record in read_jsonl(path):
            if not _is_headline(record):
                continue
            hyper = record.get("hyperparameters") or {}
            key = (record.get("dataset"), record.get("setting"), hyper.get("shots"), hyper.get("fewshot_seed"))
            one = Scoring(_label(record), record, Path(path))
            by_set = newest.setdefault(key, {}).setdefault(record["predictions"]["test_set"], {})
            if one.label not in by_set or str(record.get("created")) >= str(by_set[one.label].record.get("created")):
                by_set[one.label] = one
    return {key: {test_set: list(models.values()) for test_set, models in sets.items()} for key, sets in newest.items()}


def _title(key: tuple) -> str:
    dataset, setting, shots, seed = key
    extra = f", {shots} shots, seed {seed}" if shots is not None else ""
    return f"{dataset} / {setting}{extra}"


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return "n/a" if value != value else ("<0.001" if value < 0.001 else f"{value:.3f}")


def _pairs(models: list[Scoring], reference: str | None) -> list[tuple[Scoring, Scoring]]:
    if reference is None:
        return list(itertools.combinations(models, 2))
    ref = [m for m in models if m.label == reference or m.record.get("backbone") == reference]
    return [(ref[0], m) for m in models if m is not ref[0]] if ref else []


def _group(key: tuple, models: list[Scoring], reference: str | None, n_boot: int, seed: int, found: Comparisons) -> None:
    loaded = {m.label: predictions.load(m.record, m.results) for m in models}
    models = sorted(models, key=lambda m: -float(m.record.get("value") if m.record.get("value") is not None else float("-inf")))
    metric = str(models[0].record["metric"])
    results: dict[tuple[str, str], tuple] = {}

    def compared(a: Scoring, b: Scoring) -> tuple:
        if (a.label, b.label) not in results:
            results[(a.label, b.label)] = compare.compare_predictions(loaded[a.label], loaded[b.label], n_boot=n_boot, seed=seed,
                                                                      name_a=a.label, name_b=b.label)
        return results[(a.label, b.label)]

    pairs = _pairs(models, reference)
    if reference is not None and not pairs:
        found.problems.append(f"{_title(key)}: --reference {reference} is not among its models ({', '.join(m.label for m in models)})")
    outcomes = [(a, b, compared(a, b)) for a, b in pairs]
    adjusted = compare.holm([o[2][0].p for o in outcomes])
    rows, delong_rows, delong_p = [], [], []
    for (a, b, (head, per_class, units)), p_holm in zip(outcomes, adjusted):
        cells = [Cell(a.label), Cell(b.label), Cell(_fmt(head.a)), Cell(_fmt(head.b)),
                 Cell(f"{head.difference:+.3f} [{_fmt(head.ci[0])}, {_fmt(head.ci[1])}]"), Cell(_p(head.p)),
                 Cell(_p(p_holm) + (" *" if p_holm < ALPHA else ""))]
        row = {"record_type": "comparison", "dataset": key[0], "setting": key[1], "shots": key[2], "fewshot_seed": key[3],
               "metric": head.metric, "model_a": a.label, "model_b": b.label, "value_a": head.a, "value_b": head.b,
               "difference": head.difference, "ci_low": head.ci[0], "ci_high": head.ci[1], "p": head.p, "p_holm": p_holm,
               "test": "paired patient bootstrap", "n_boot": head.n_boot, "n_patients": head.n_patients,
               "family": f"Holm over the {len(outcomes)} comparisons of {_title(key)}",
               "predictions_a": a.record["predictions"]["id"], "predictions_b": b.record["predictions"]["id"]}
        if units is not None:
            cells.append(Cell(f"{units.mean:+.3f} ({units.a_better}/{units.b_better} of {units.n_patients}), p={_p(units.wilcoxon_p)}"))
            row.update({"per_patient_mean_difference": units.mean, "patients_a_better": units.a_better,
                        "patients_b_better": units.b_better, "wilcoxon_p": units.wilcoxon_p})
        for name, test in per_class:
            delong_rows.append((a.label, b.label, name, test))
            delong_p.append(test.p)
        row["delong"] = [{"class": name, "auc_a": t.auc_a, "auc_b": t.auc_b, "difference": t.difference, "se": t.se,
                          "z": t.z, "p": t.p} for name, t in per_class]
        rows.append(cells)
        found.rows.append(row)
    header = ["model A", "model B", "A", "B", "A - B [95% paired CI]", "p", "p (Holm)"]
    if any(o[2][2] is not None for o in outcomes):
        header.append("per-patient A - B (A better / B better of n), Wilcoxon p")
    if rows:
        found.tables.append(Table(
            f"Paired comparison: {_title(key)} ({HEADLINES[metric]})", header, rows,
            [f"A - B on the same {models[0].record.get('n_test')} test rows: 95% interval and p from the paired patient "
             f"bootstrap ({n_boot} resamples); p (Holm): Holm-corrected over the {len(rows)} comparisons of this table; "
             f"* adjusted p < {ALPHA}."]))
    if delong_rows:
        delong_holm = compare.holm(delong_p)
        found.tables.append(Table(
            f"DeLong per class: {_title(key)}", ["model A", "model B", "class", "AUROC A", "AUROC B", "A - B [95% CI]", "p", "p (Holm)"],
            [[Cell(a), Cell(b), Cell(c), Cell(_fmt(t.auc_a)), Cell(_fmt(t.auc_b)),
              Cell(f"{t.difference:+.3f} [{_fmt(t.ci[0])}, {_fmt(t.ci[1])}]"), Cell(_p(t.p)), Cell(_p(h) + (" *" if h < ALPHA else ""))]
             for (a, b, c, t), h in zip(delong_rows, delong_holm)],
            [f"DeLong's test (fast algorithm of Sun & Xu 2014) per class; p (Holm): over the {len(delong_rows)} rows of this table."]))
    _marks(models, compared, found)


def _marks(models: list[Scoring], compared, found: Comparisons) -> None:
    """Best = highest headline; tied = not significantly worse than the best (Holm over best-vs-other)."""
    best = models[0]
    found.marks[best.record["predictions"]["id"]] = "best"
    others = models[1:]
    adjusted = compare.holm([compared(best, other)[0].p for other in others])
    for other, p in zip(others, adjusted):
        equal = other.record.get("value") == best.record.get("value")
        found.marks[other.record["predictions"]["id"]] = "best" if equal else ("tied" if not p < ALPHA else "worse")


def compare_results(results: Sequence[str | Path], *, reference: str | None = None, n_boot: int = 1000, seed: int = 0) -> Comparisons:
    """Every paired comparison the results files allow (see the module docstring)."""
    found = Comparisons()
    for key, sets in sorted(scorings(results).items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        if len(sets) > 1:
            names = "; ".join(", ".join(m.label for m in models) for models in sets.values())
            found.problems.append(f"{_title(key)}: scored on {len(sets)} different test sets ({names}); "
                                  "only models scored on the same test samples are compared")
        for models in sets.values():
            if len(models) < 2:
                continue
            try:
                _group(key, models, reference, n_boot, seed, found)
            except predictions.PredictionsError as error:
                found.problems.append(f"{_title(key)}: not compared: {error}")
    return found


def write_comparisons(path: Path, found: Comparisons) -> None:
    """Every comparison as one JSON line (the numbers behind the paired-comparison tables)."""
    def clean(value: Any) -> Any:
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return [clean(v) for v in value] if isinstance(value, list) else value

    path.write_text("".join(json.dumps(clean(row), allow_nan=False, default=float) + "\n" for row in found.rows))

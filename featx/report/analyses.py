"""The report's calibration table, reliability diagram and subgroup table, from the records that hold the numbers.

Calibration: the ``calibration`` field of each scoring's headline test record (Brier and ECE
per class and their mean, equal-mass bins as recorded); scorings whose calibration says
``probabilities: false`` (kNN, ML-kNN) are marked as scores, not calibrated probabilities.
Subgroups: the ``subgroups`` field of the same record; a too-small subgroup is shown with its reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.report.figures import Drawn, Figure, panels, save
from featx.report.tables import Cell, Table


def _ci(value: float | None, ci: list | None) -> str:
    if value is None or value != value:
        return "n/a"
    text = f"{float(value):.3f}"
    if ci and ci[0] is not None and ci[1] is not None and ci[0] == ci[0] and ci[1] == ci[1]:
        text += f" [{float(ci[0]):.3f}, {float(ci[1]):.3f}]"
    return text


def _scorings(records: pd.DataFrame, field: str) -> list[pd.Series]:
    """The newest headline test record holding ``field`` of each (dataset, setting, model, shots, seed)."""
    if field not in records or "metric" not in records:
        return []
    rows = records[(records["split"] == "test") & (records["metric"] == "auroc_macro") & records["class"].isna()]
    rows = rows[[isinstance(v, (dict, list)) and len(v) > 0 for v in rows[field]]]
    if rows.empty:
        return []
    rows = rows.sort_values("created", na_position="first", kind="stable")
    keys = [(r["dataset"], r["setting"], _model(r), str(r["hyperparameters"].get("shots")), str(r["hyperparameters"].get("fewshot_seed")))
            for _, r in rows.iterrows()]
    newest = {key: row for key, (_, row) in zip(keys, rows.iterrows())}
    return [newest[key] for key in sorted(newest, key=lambda k: tuple(str(x) for x in k))]


def _model(row: pd.Series) -> str:
    return str(row["backbone"]) + (" (random weights)" if bool(row.get("random_init") or False) else "")


def _setting(row: pd.Series) -> str:
    hyper = row["hyperparameters"]
    return str(row["setting"]) + (f" n={hyper['shots']} seed {hyper.get('fewshot_seed')}" if hyper.get("shots") is not None else "")


def calibration_tables(records: pd.DataFrame) -> list[Table]:
    """Mean over classes, then per class: Brier and ECE with patient-bootstrap intervals."""
    found = _scorings(records, "calibration")
    mean_rows, class_rows = [], []
    for row in found:
        cal = row["calibration"]
        kind = "probabilities" if cal.get("probabilities") else "scores (not calibrated probabilities)"
        bins = f"{cal.get('bins')} {str(cal.get('binning', '')).replace('_', '-')}"
        head = [Cell(str(row["dataset"])), Cell(_setting(row)), Cell(_model(row))]
        if cal.get("mean"):
            m = cal["mean"]
            mean_rows.append(head + [Cell(_ci(m["brier"], m["brier_ci"])), Cell(_ci(m["ece"], m["ece_ci"])), Cell(bins), Cell(kind)])
        for name, c in (cal.get("per_class") or {}).items():
            class_rows.append(head + [Cell(str(name)), Cell(_ci(c["brier"], c["brier_ci"])), Cell(_ci(c["ece"], c["ece_ci"]))])
    note = ("Brier: mean squared difference of score and label; ECE: sum over equal-mass bins of (bin share) x "
            "|observed rate - mean score|; 95% intervals: percentile bootstrap over test patients. kNN and ML-kNN outputs "
            "are scores, not calibrated probabilities: their calibration is shown, not to be read as a fault.")
    tables = []
    if mean_rows:
        tables.append(Table("Calibration (mean over classes)", ["dataset", "setting", "model", "Brier [95% CI]", "ECE [95% CI]",
                                                                 "bins", "outputs"], mean_rows, [note]))
    if class_rows:
        tables.append(Table("Calibration per class", ["dataset", "setting", "model", "class", "Brier [95% CI]", "ECE [95% CI]"],
                            class_rows))
    return tables


def reliability_figure(records: pd.DataFrame, out_dir: Path) -> Figure | None:
    """Per (dataset, setting), mean score against observed rate per equal-mass bin, one line per model (None: no calibration recorded)."""
    key, title = "reliability", "Reliability diagram (every class's scores pooled, equal-mass bins)"
    found = [r for r in _scorings(records, "calibration") if r["calibration"].get("mean")]
    if not found:
        return None
    groups: dict[tuple[str, str], list[pd.Series]] = {}
    for row in found:
        groups.setdefault((str(row["dataset"]), _setting(row)), []).append(row)
    fig, axes = panels(len(groups))
    for ax, ((dataset, setting), rows) in zip(axes, groups.items()):
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for row in rows:
            bins = row["calibration"]["mean"]["reliability"]
            x = np.array([b["mean_score"] for b in bins], dtype=float)
            y = np.array([b["observed"] for b in bins], dtype=float)
            ax.plot(x, y, marker="o", ms=3, lw=1.2, label=_model(row) + ("" if row["calibration"].get("probabilities") else " (scores)"))
        ax.set(title=f"{dataset} / {setting}", xlabel="mean score in bin", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
    drawn: Drawn = save(fig, out_dir, key, title)
    drawn.note = "Each point: one equal-mass bin of (row, class) scores; the dashed diagonal is perfect calibration."
    return drawn


def subgroup_table(records: pd.DataFrame) -> Table | None:
    """Per scoring and metadata grouping: each subgroup's macro AUROC (or why it is too small) and the largest gap."""
    out = []
    for row in _scorings(records, "subgroups"):
        for grouping in row["subgroups"]:
            parts = [f"{g['group']}: too small ({g['too_small']})" if g.get("too_small")
                     else f"{g['group']}: {_ci(g['value'], g['ci'])} ({g['n_patients']} patients)" for g in grouping["groups"]]
            between = grouping.get("gap_between")
            gap = f"{_ci(grouping['gap'], grouping['gap_ci'])} ({between[0]} - {between[1]})" if between else "–"
            out.append([Cell(str(row["dataset"])), Cell(_setting(row)), Cell(_model(row)), Cell(grouping["column"]),
                        Cell("; ".join(parts)), Cell(gap)])
    if not out:
        return None
    return Table("Subgroups (test macro AUROC per subgroup)",
                 ["dataset", "setting", "model", "grouping", "subgroups [95% CI]", "largest gap [95% CI]"], out,
                 ["Intervals: one patient bootstrap of the whole test set serves every subgroup; the gap is the best minus the "
                  "worst scored subgroup on the same resamples. Age bands: 0-17, 18-39, 40-59, 60-79, 80+ years; a subgroup "
                  "under 10 patients or without a class having positives and negatives is named as too small."])

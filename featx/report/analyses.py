"""The report's calibration table, reliability diagram and subgroup table, from the records that hold the numbers.

Calibration: the ``brier`` / ``ece`` records of each test scoring (``class: null`` = mean over
classes), equal-mass bins as recorded; scorings whose records say ``probabilities: false``
(kNN, ML-kNN) are marked as scores, not calibrated probabilities. Subgroups: the
``subgroup_auroc_macro`` and ``subgroup_gap`` records; a too-small subgroup is shown with its reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.report.figures import Drawn, Figure, Missing, panels, save
from featx.report.tables import Cell, Table


def _newest(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = rows.sort_values("created", na_position="first", kind="stable")
    return rows.groupby(keys, dropna=False, sort=True).tail(1)


def _interval(row: pd.Series) -> str:
    value, low, high = (row.get(k) for k in ("value", "ci_low", "ci_high"))
    if value is None or pd.isna(value):
        return "n/a"
    text = f"{float(value):.3f}"
    if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
        text += f" [{float(low):.3f}, {float(high):.3f}]"
    return text


def _model(row: pd.Series) -> str:
    return str(row["backbone"]) + (" (random weights)" if bool(row.get("random_init") or False) else "")


def _test(records: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    if "metric" not in records:
        return records.iloc[0:0]
    rows = records[(records["split"] == "test") & records["metric"].isin(metrics)].copy()
    if "aggregate" in rows:
        rows = rows[rows["aggregate"].isna()]
    return rows.assign(model=[_model(r) for _, r in rows.iterrows()])


def calibration_tables(records: pd.DataFrame) -> list[Table]:
    """Mean over classes, then per class: Brier and ECE with patient-bootstrap intervals."""
    rows = _test(records, ("brier", "ece"))
    if rows.empty:
        return []
    rows = rows.assign(klass=rows["class"].fillna("(mean over classes)"))
    rows = _newest(rows, ["dataset", "setting", "model", "klass", "metric"])
    tables = []
    for title, part in (("Calibration (mean over classes)", rows[rows["class"].isna()]), ("Calibration per class", rows[rows["class"].notna()])):
        out = []
        for (dataset, setting, model, klass), group in part.groupby(["dataset", "setting", "model", "klass"], sort=True):
            by = {r["metric"]: r for _, r in group.iterrows()}
            ece = by.get("ece")
            kind = "probabilities" if bool(group["probabilities"].iloc[0]) else "scores (not calibrated probabilities)"
            bins = f"{int(ece['ece_bins'])} equal-mass" if ece is not None and not pd.isna(ece.get("ece_bins")) else "–"
            line = [Cell(str(dataset)), Cell(str(setting)), Cell(model)]
            if klass != "(mean over classes)":
                line.append(Cell(str(klass)))
            line += [Cell(_interval(by["brier"]) if "brier" in by else "–"), Cell(_interval(ece) if ece is not None else "–"),
                     Cell(bins), Cell(kind)]
            out.append(line)
        if out:
            header = ["dataset", "setting", "model"] + (["class"] if "per class" in title else []) + ["Brier [95% CI]", "ECE [95% CI]", "bins", "outputs"]
            tables.append(Table(title, header, out, [
                "Brier: mean squared difference of score and label; ECE: sum over equal-mass bins of (bin share) x "
                "|observed rate - mean score|; 95% intervals: percentile bootstrap over test patients. kNN and ML-kNN "
                "outputs are scores, not calibrated probabilities: their calibration is shown, not to be read as a fault."]))
    return tables


def reliability_figure(records: pd.DataFrame, out_dir: Path) -> Figure:
    """Per (dataset, setting), mean score against observed rate per equal-mass bin, one line per model."""
    key, title = "reliability", "Reliability diagram (all classes pooled, equal-mass bins)"
    rows = _test(records, ("ece",))
    if rows.empty:
        return Missing(key, title, "no calibration records in the results (re-run the probes with this featx)")
    rows = _newest(rows[rows["class"].isna()], ["dataset", "setting", "model"])
    groups = list(rows.groupby(["dataset", "setting"], sort=True))
    fig, axes = panels(len(groups))
    for ax, ((dataset, setting), group) in zip(axes, groups):
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for _, row in group.iterrows():
            bins = row.get("reliability") or []
            x = np.array([b["mean_score"] for b in bins], dtype=float)
            y = np.array([b["observed"] for b in bins], dtype=float)
            label = row["model"] + ("" if bool(row.get("probabilities")) else " (scores)")
            ax.plot(x, y, marker="o", ms=3, lw=1.2, label=label)
        ax.set(title=f"{dataset} / {setting}", xlabel="mean score in bin", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
    drawn: Drawn = save(fig, out_dir, key, title)
    drawn.note = "Each point: one equal-mass bin of (row, class) scores; the dashed diagonal is perfect calibration."
    return drawn


def subgroup_table(records: pd.DataFrame) -> Table | None:
    """Per scoring and metadata column: each subgroup's macro AUROC (or why it is too small) and the largest gap."""
    rows = _test(records, ("subgroup_auroc_macro", "subgroup_gap"))
    if rows.empty:
        return None
    rows = _newest(rows, ["dataset", "setting", "model", "subgroup_column", "metric", "subgroup"])
    out = []
    for (dataset, setting, model, column), group in rows.groupby(["dataset", "setting", "model", "subgroup_column"], sort=True):
        parts = []
        for _, row in group[group["metric"] == "subgroup_auroc_macro"].iterrows():
            if isinstance(row.get("too_small"), str) and row["too_small"]:
                parts.append(f"{row['subgroup']}: too small ({row['too_small']})")
            else:
                parts.append(f"{row['subgroup']}: {_interval(row)} ({int(row['subgroup_patients'])} patients)")
        gap = group[group["metric"] == "subgroup_gap"]
        gap_text = "–"
        if not gap.empty and not pd.isna(gap.iloc[0]["value"]):
            between = gap.iloc[0].get("gap_between") or ["?", "?"]
            gap_text = f"{_interval(gap.iloc[0])} ({between[0]} - {between[1]})"
        out.append([Cell(str(dataset)), Cell(str(setting)), Cell(model), Cell(str(column)), Cell("; ".join(parts)), Cell(gap_text)])
    return Table("Subgroups (test macro AUROC per subgroup)", ["dataset", "setting", "model", "grouping", "subgroups [95% CI]", "largest gap [95% CI]"],
                 out, ["Intervals: one patient bootstrap of the whole test set serves every subgroup; the gap is best minus "
                       "worst subgroup on the same resamples. Age bands: 0-17, 18-39, 40-59, 60-79, 80+ years."])

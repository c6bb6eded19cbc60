"""Best per column, ties by overlapping intervals, and the cross-task ranks of Figure 1."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


def mark_best(cells: pd.DataFrame) -> pd.DataFrame:
    """Add ``best`` (highest value per section and column) and ``tied`` (interval overlaps the best's).

    A cell without an interval ties only by an equal value; conflicts and missing values are neither.
    """
    cells = cells.assign(best=False, tied=False)
    if cells.empty:
        return cells
    keys = ["section", "column"] + (["shots"] if "shots" in cells and cells["shots"].notna().any() else [])
    for _, group in cells.groupby(keys, dropna=False):
        values = group["value"].astype(float)
        if values.notna().sum() == 0:
            continue
        top = values.idxmax()
        best_value = values[top]
        low = group["ci_low"].astype(float).fillna(values)
        high = group["ci_high"].astype(float).fillna(values)
        cells.loc[values.index[values == best_value], "best"] = True
        overlap = (low <= high[top]) & (high >= low[top]) & values.notna() & (values != best_value)
        cells.loc[overlap[overlap].index, "tied"] = True
    return cells


def rank_setting(cells: pd.DataFrame, task: str) -> str | None:
    """The section ranked for a task: ``linear`` for classification, a U-Net one for segmentation, else the first."""
    sections = sorted(cells.loc[cells["task"] == task, "section"].unique()) if len(cells) else []
    if not sections:
        return None
    preferred = "linear" if task == "classification" else "unet"
    exact = [s for s in sections if s == preferred]
    partial = [s for s in sections if preferred in s]
    return (exact or partial or sections)[0]


@dataclass
class Ranks:
    """Rank per dataset (1 = best; ties share the mean rank) and the mean over each task's datasets."""

    per_dataset: pd.DataFrame  # index model, one column per dataset
    mean: pd.DataFrame  # index model, columns "classification" / "segmentation" (where ranked)
    sections: dict[str, str]  # task -> section ranked
    datasets: dict[str, list[str]]  # task -> its dataset columns


def cross_task_ranks(cells: pd.DataFrame) -> Ranks:
    """For each dataset rank the models, then average the ranks over the classification and the segmentation datasets."""
    per_dataset, mean, sections, datasets = [], {}, {}, {}
    for task in ("classification", "segmentation"):
        section = rank_setting(cells, task)
        if section is None:
            continue
        rows = cells[(cells["section"] == section) & cells["value"].notna()]
        table = rows.pivot_table(index="model", columns="column", values="value", aggfunc="first")
        if table.empty:
            continue
        ranks = table.rank(axis=0, ascending=False, method="average")
        per_dataset.append(ranks)
        mean[task] = ranks.mean(axis=1, skipna=True)
        sections[task] = section
        datasets[task] = list(ranks.columns)
    if not per_dataset:
        return Ranks(pd.DataFrame(), pd.DataFrame(), {}, {})
    return Ranks(pd.concat(per_dataset, axis=1), pd.DataFrame(mean), sections, datasets)


def n_models(ranks: Ranks) -> int:
    """The most models ranked against each other on one dataset (a rank among fewer than two says nothing)."""
    return int(ranks.per_dataset.notna().sum(axis=0).max()) if not ranks.per_dataset.empty else 0


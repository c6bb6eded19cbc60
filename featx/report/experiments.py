"""Which records are the same experiment: rows (model variants), sections (settings), columns (datasets), cells.

Nothing is merged silently. A row is a backbone *variant*: backbone plus everything of its store key a
record carries (image size, weights hash, random init, and preprocessing / layers / patch tokens where
records carry them); two sizes or two weights of one backbone are two rows. A section is a setting, split
by backend when one setting ran on several. A column is a dataset, split when its records were computed
with different label sets. Inside one cell, records of different runs (store key, seed, probe
configuration) are a *conflict*: the cell shows no number and the report lists the runs. Only re-runs of
exactly the same run collapse, to the newest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Headline metric per section: the first of these present (classification AUROC; segmentation Dice/Jaccard).
HEADLINE_METRICS = ("auroc_macro", "dice_jaccard_mean", "dice_jaccard", "mean_dice_jaccard", "dice", "jaccard")
SEGMENTATION_WORDS = ("dice", "jaccard")
# Store-key fields a record may carry; each one that differs between records of a backbone makes a new row.
MODEL_FIELDS = ("img_size", "weights_hash", "random_init", "preprocessing", "layers", "patch_tokens")
# Hyper-parameters chosen on validation (outcomes of a run, not what makes runs different experiments).
SELECTED_KEYS = frozenset({"k", "lr", "C", "n_last_blocks", "avgpool", "features", "selected_on", "retrained_on",
                           "selected", "shots", "fewshot_seed", "epoch", "best_epoch"})
SPREAD_FIELDS = ("macro_std", "std", "spread_std", "seed_std")


def is_fewshot(setting: pd.Series) -> pd.Series:
    """Few-shot settings (``fewshot-knn``, ``fewshot-linear``) are reported per number of shots."""
    return setting.astype(str).str.startswith("fewshot")


def _canonical(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "null"
    return json.dumps(value, sort_keys=True, default=str)


def probe_config(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The hyper-parameters a user chose (backend, temperature, epochs, method ...), not those selected."""
    return {k: v for k, v in sorted(hyperparameters.items()) if k not in SELECTED_KEYS}


def _truthy(value: Any) -> bool:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return bool(value)


def _model_part(name: str, value: Any) -> str:
    if name == "img_size":
        return f"{value} px"
    if name == "random_init":
        return "random weights" if _truthy(value) else "pretrained"
    if name == "weights_hash":
        return "random weights" if value == "random-init" else f"weights {str(value)[:8]}"
    return f"{name} {value if isinstance(value, (int, float, str)) else _canonical(value)}"


def model_labels(records: pd.DataFrame) -> pd.Series:
    """One row label per record: the backbone, plus whatever tells its variants apart; random weights always said."""
    fields = [f for f in MODEL_FIELDS if f in records]
    keys = records[fields].apply(lambda row: tuple(_canonical(v) for v in row), axis=1) if fields else None
    labels = pd.Series(records["backbone"].astype(str), index=records.index)
    for backbone, group in records.groupby("backbone"):
        variants = keys[group.index].unique() if keys is not None else [()]
        differing = [i for i, _ in enumerate(fields) if len({v[i] for v in variants}) > 1]
        for index in group.index:
            row = group.loc[index]
            parts = [_model_part(fields[i], row[fields[i]]) for i in differing]
            random = _truthy(row.get("random_init")) or row.get("weights_hash") == "random-init"
            if random and "random weights" not in parts:
                parts.append("random weights")
            if "pretrained" in parts and "weights_hash" in [fields[i] for i in differing]:
                parts.remove("pretrained")
            labels[index] = f"{backbone} ({', '.join(dict.fromkeys(parts))})" if parts else str(backbone)
    return labels


def dataset_labels(records: pd.DataFrame) -> tuple[pd.Series, list[str]]:
    """Column label per record: the dataset, split by label set where one dataset's records disagree."""
    labels = records["dataset"].astype(str).copy()
    problems = []
    names = records["label_names"].map(lambda v: tuple(v) if isinstance(v, (list, tuple)) else None)
    for dataset, group in records.groupby("dataset"):
        sets = [s for s in dict.fromkeys(names[group.index]) if s is not None]
        if len(sets) < 2:
            continue
        listing = "; ".join(f"labels {i + 1} = {list(s)}" for i, s in enumerate(sets))
        problems.append(f"{dataset}: records come from stores with {len(sets)} different label sets ({listing}); "
                        "they are shown as separate columns, not compared")
        for index in group.index:
            if names[index] is not None:
                labels[index] = f"{dataset} [labels {sets.index(names[index]) + 1}]"
    return labels, problems


def task_of(setting: str, metric: str, record: pd.Series) -> str:
    """``segmentation`` for Dice/Jaccard metrics, ``seg*`` settings or segmentation stores, else ``classification``."""
    if any(word in metric for word in SEGMENTATION_WORDS) or setting.startswith("seg") or record.get("task") == "segmentation":
        return "segmentation"
    return "classification"


@dataclass
class Experiments:
    """Test-split headline records with their row, section and column labels, and what went wrong."""

    headline: pd.DataFrame  # one record per cell run, labelled
    cells: pd.DataFrame  # one row per (section, model, column[, shots]); conflicts have value NaN and text
    fewshot: pd.DataFrame  # few-shot cells, one row per (section, model, column, shots)
    problems: list[str] = field(default_factory=list)


def _section_labels(rows: pd.DataFrame) -> pd.Series:
    backends = rows["hyperparameters"].map(lambda h: h.get("backend"))
    labels = rows["setting"].astype(str).copy()
    for setting, group in rows.groupby("setting"):
        found = {b for b in backends[group.index] if b is not None}
        if len(found) > 1:
            labels[group.index] = [f"{setting} ({b})" if b else str(setting) for b in backends[group.index]]
    return labels


def _headline_rows(records: pd.DataFrame, metric: str | None) -> pd.DataFrame:
    rows = records[(records["split"] == "test") & records["class"].isna()].copy()
    keep = []
    for _, group in rows.groupby("setting"):
        present = list(dict.fromkeys(group["metric"]))
        wanted = [metric] if metric in present else [m for m in HEADLINE_METRICS if m in present]
        if wanted:
            keep.append(group[group["metric"] == wanted[0]])
    return pd.concat(keep) if keep else rows.iloc[0:0]


def _run_key(row: pd.Series) -> str:
    return _canonical({"store": row.get("store_key"), "seed": row.get("seed"),
                       "config": probe_config(row["hyperparameters"])})


def _describe_runs(group: pd.DataFrame) -> str:
    """What differs between the runs of one cell, one run per clause."""
    configs = [probe_config(h) for h in group["hyperparameters"]]
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({_canonical(c.get(k)) for c in configs}) > 1]
    clauses = []
    for (_, row), config in zip(group.iterrows(), configs):
        parts = [f"store {row.get('store_key')}"] if group["store_key"].nunique(dropna=False) > 1 else []
        if group["seed"].nunique(dropna=False) > 1:
            parts.append(f"seed {row.get('seed')}")
        parts += [f"{k}={config.get(k)}" for k in differing]
        clauses.append(f"{row['value']:.3f} ({', '.join(parts) or 'same run'})")
    return "; ".join(clauses)


def _resolve(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per cell: the newest of each run; several different runs become a conflict."""
    rows = rows.sort_values("created", na_position="first", kind="stable")
    rows = rows.assign(run_key=[_run_key(r) for _, r in rows.iterrows()])
    newest = rows.groupby([*keys, "run_key"], as_index=False, sort=False, dropna=False).last()
    cells = []
    for _, group in newest.groupby(keys, sort=True, dropna=False):
        cell = group.iloc[-1].copy()
        cell["n_runs"] = len(group)
        cell["conflict"] = _describe_runs(group) if len(group) > 1 else ""
        if len(group) > 1:
            cell[["value", "ci_low", "ci_high"]] = np.nan
        cells.append(cell)
    return pd.DataFrame(cells).reset_index(drop=True)


def _spread(row: pd.Series) -> float:
    for name in SPREAD_FIELDS:
        value = row.get(name)
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            return float(value)
    return float("nan")


def _shots_order(shots: str) -> tuple[int, float]:
    return (1, 0.0) if shots == "all" else (0, float(shots))


def shots_sorted(values: Any) -> list[str]:
    """Shot counts in reading order: 1, 2, 4, ..., all."""
    return sorted({str(v) for v in values}, key=_shots_order)


def collect(records: pd.DataFrame, metric: str | None = None) -> Experiments:
    """Label the test headline records and resolve them into cells (see the module docstring)."""
    rows = _headline_rows(records, metric)
    columns, problems = dataset_labels(records)
    empty = pd.DataFrame(columns=["section", "model", "column", "value"])
    if rows.empty:
        return Experiments(rows, empty, empty, problems)
    rows = rows.assign(
        model=model_labels(records)[rows.index],
        column=columns[rows.index],
        section=_section_labels(rows),
        task=[task_of(str(r["setting"]), str(r["metric"]), r) for _, r in rows.iterrows()],
        test_reuse=[_truthy(v) for v in rows.get("test_reuse", pd.Series(None, index=rows.index))],
        random=[_truthy(r.get("random_init")) or r.get("weights_hash") == "random-init" for _, r in rows.iterrows()],
    )
    for name in ("trainable_params", "total_params", "aggregate"):
        if name not in rows:
            rows[name] = None
    few = is_fewshot(rows["setting"])
    frozen = _resolve(rows[~few], ["section", "model", "column"]) if (~few).any() else empty
    aggregated = rows[few & rows["aggregate"].notna()]
    if len(aggregated):
        aggregated = aggregated.assign(shots=[str(h.get("shots")) for h in aggregated["hyperparameters"]],
                                       spread=[_spread(r) for _, r in aggregated.iterrows()])
        fewshot = _resolve(aggregated, ["section", "model", "column", "shots"])
    else:
        fewshot = empty
    for _, cell in pd.concat([frozen, fewshot]).iterrows():
        if cell.get("conflict"):
            where = f"{cell['section']} / {cell['model']} / {cell['column']}"
            if isinstance(cell.get("shots"), str):
                where += f" / {cell['shots']} shots"
            problems.append(f"{where}: {int(cell['n_runs'])} different runs, not merged: {cell['conflict']}")
    return Experiments(rows, frozen, fewshot, problems)

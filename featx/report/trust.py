"""What decides whether a number can be trusted, beside it: how many patients and images it rests on, the
small-set and low-support warnings of its records, the positives per class, and the hyper-parameters chosen
on validation together with the grid they were chosen from."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from featx.report.experiments import SELECTED_KEYS, Experiments, is_fewshot, probe_config

WARNING_MARK = "⚠"
NOT_CHOSEN = frozenset({"selected_on", "retrained_on", "selected", "shots", "fewshot_seed", "epoch", "best_epoch"})


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def support(cell: pd.Series) -> str:
    """``24 patients / 52 images``: what the cell's test number rests on ('' when its record does not say)."""
    patients = cell.get("n_patients")
    units = cell.get("n_test_units") if _present(cell.get("n_test_units")) else cell.get("n_test")
    level = cell.get("level") if _present(cell.get("level")) else None
    if _present(units) and cell.get("task") == "segmentation" and _present(cell.get("n_test_units")):
        level = "volume" if str(cell.get("aggregation", "")).endswith("volume") else (level or "image")
    parts = []
    if _present(patients):
        parts.append(f"{int(patients)} patients")
    if _present(units) and (level != "patient" or not parts):
        parts.append(f"{int(units)} {level or 'row'}s")
    return " / ".join(parts)


def warnings_of(cell: pd.Series) -> list[str]:
    """The record's small-set warnings, and a low-support note when its interval rests on few resamples."""
    found = [str(w) for w in (cell.get("small_set_warnings") or []) if w] if isinstance(
        cell.get("small_set_warnings"), (list, tuple)) else []
    if cell.get("ci_low_support") is True:
        found.append("the 95% interval rests on few bootstrap resamples (ci_low_support): it is rough")
    return found


def column_support(rows: pd.DataFrame, column: str) -> str:
    """The distinct supports of one column's cells (one, when every backbone was scored on the same test set)."""
    found = [support(r) for _, r in rows[rows["column"] == column].iterrows()]
    return "; ".join(dict.fromkeys(s for s in found if s)) or "–"


def warning_notes(rows: pd.DataFrame) -> list[str]:
    """One note per column and distinct warning, for the cells marked ⚠."""
    notes: dict[str, None] = {}
    for _, row in rows.sort_values("column").iterrows():
        for warning in warnings_of(row):
            notes[f"{WARNING_MARK} {row['column']}: {warning}"] = None
    return list(notes)


def class_positives(records: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """Per multi-label column: positive test patients per class (from the per-class records)."""
    if records is None or "positive_patients" not in records or "class" not in records:
        return []
    notes = []
    for column, dataset in sorted({(r["column"], r["dataset"]) for _, r in rows.iterrows()}):
        per_class = records[(records["dataset"] == dataset) & (records["split"] == "test") & records["class"].notna()
                            & records["positive_patients"].notna() & (records["setting"].isin(set(rows["setting"])))]
        if per_class.empty or per_class["class"].nunique() < 3:
            continue  # a binary task's two classes say no more than the patient count
        counts = per_class.drop_duplicates("class").set_index("class")["positive_patients"]
        listing = ", ".join(f"{name} {int(n)}" for name, n in counts.items())
        notes.append(f"{column}: test patients with a positive label, per class: {listing}")
    return notes


def _chosen(hyper: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hyper.items() if k in SELECTED_KEYS and k not in NOT_CHOSEN}


def _order(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def _values(values: list[Any]) -> str:
    return "{" + ", ".join(sorted({str(v) for v in values}, key=_order)) + "}"


def hyperparameter_rows(experiments: Experiments, records: pd.DataFrame) -> list[dict[str, str]]:
    """Per (setting, dataset, backbone): the configuration, the values chosen on validation, and the grid."""
    cells = experiments.cells
    if cells.empty:
        return []
    val = records[records["split"] == "val"] if len(records) else records
    out = []
    for _, cell in cells.sort_values(["section", "column", "model"]).iterrows():
        if cell.get("conflict") or is_fewshot(pd.Series([cell["section"]])).iloc[0]:
            continue
        hyper = cell["hyperparameters"] if isinstance(cell["hyperparameters"], dict) else {}
        chosen = _chosen(hyper)
        same = val[(val["dataset"] == cell["dataset"]) & (val["backbone"] == cell["backbone"])
                   & (val["setting"] == cell["setting"]) & (val["store_key"] == cell.get("store_key"))
                   & (val["seed"] == cell.get("seed"))]
        candidates = [h for h in same["hyperparameters"] if isinstance(h, dict)]
        keys = [k for k in chosen if any(k in h for h in candidates)]
        if candidates and keys:
            grid = " × ".join(f"{k} ∈ {_values([h.get(k) for h in candidates if k in h])}" for k in keys)
            grid += f" ({len({tuple(str(h.get(k)) for k in keys) for h in candidates})} candidates)"
        else:
            grid = "no validation records (fixed, or written with --no-val-records)"
        config = probe_config(hyper)
        out.append({
            "setting": str(cell["section"]), "dataset": str(cell["column"]), "backbone": str(cell["model"]),
            "chosen": ", ".join(f"{k}={v}" for k, v in chosen.items()) or "–",
            "grid": grid, "selected on": str(hyper.get("selected_on") or ("val" if candidates else "–")),
            "configuration": ", ".join(f"{k}={v}" for k, v in config.items()) or "–",
        })
    return out

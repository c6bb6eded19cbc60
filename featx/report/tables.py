"""Markdown summary tables: datasets x backbones x settings."""

from __future__ import annotations

import math

import pandas as pd

HEADLINE_METRIC = "auroc_macro"


def headline(records: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """The test-split headline numbers, the newest per (dataset, backbone, setting)."""
    rows = records[(records["split"] == "test") & (records["metric"] == metric) & records["class"].isna()]
    if "created" in rows:
        rows = rows.sort_values("created")
    return rows.groupby(["dataset", "backbone", "setting"], as_index=False).last()


def _cell(row: pd.Series) -> str:
    text = f"{row['value']:.3f}"
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{low:.3f}, {high:.3f}]"
    return text


def summary_table(records: pd.DataFrame, metric: str = HEADLINE_METRIC) -> str:
    """A markdown table, one row per (dataset, backbone), one column per setting."""
    rows = headline(records, metric)
    if rows.empty:
        return f"No test-split '{metric}' records to report."
    settings = sorted(rows["setting"].unique())
    lines = [
        f"Test-split {metric} (95% patient-bootstrap interval in brackets)",
        "",
        "| dataset | backbone | " + " | ".join(settings) + " |",
        "|---|---|" + "---|" * len(settings),
    ]
    for (dataset, backbone), group in rows.groupby(["dataset", "backbone"]):
        by_setting = {r["setting"]: _cell(r) for _, r in group.iterrows()}
        name = backbone + (" (random weights)" if bool(group["random_init"].fillna(False).any()) else "")
        lines.append(f"| {dataset} | {name} | " + " | ".join(by_setting.get(s, "–") for s in settings) + " |")
    if rows["random_init"].fillna(False).astype(bool).any():
        lines += ["", "Rows marked '(random weights)' come from randomly initialised backbones: not a model comparison."]
    return "\n".join(lines)

"""Markdown summary tables: datasets x backbones x settings."""

from __future__ import annotations

import math

import pandas as pd

HEADLINE_METRIC = "auroc_macro"


def _test_numbers(records: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = records[(records["split"] == "test") & (records["metric"] == metric) & records["class"].isna()]
    return rows.sort_values("created") if "created" in rows else rows


def is_fewshot(setting: pd.Series) -> pd.Series:
    """Few-shot settings (``fewshot-knn``, ``fewshot-linear``) are reported per number of shots."""
    return setting.astype(str).str.startswith("fewshot")


def headline(records: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """The test-split headline numbers, the newest per (dataset, backbone, setting); few-shot apart."""
    rows = _test_numbers(records, metric)
    rows = rows[~is_fewshot(rows["setting"])]
    return rows.groupby(["dataset", "backbone", "setting"], as_index=False).last()


def fewshot_curves(records: pd.DataFrame, metric: str = HEADLINE_METRIC) -> pd.DataFrame:
    """Mean over seeds (and its spread) per (dataset, backbone, setting, shots), newest run."""
    if "aggregate" not in records:
        return records.iloc[0:0]
    rows = _test_numbers(records, metric)
    rows = rows[is_fewshot(rows["setting"]) & rows["aggregate"].notna()]
    rows = rows.assign(shots=[str(h.get("shots")) for h in rows["hyperparameters"]])
    return rows.groupby(["dataset", "backbone", "setting", "shots"], as_index=False).last()


def _shots_order(shots: str) -> tuple[int, int]:
    return (1, 0) if shots == "all" else (0, int(float(shots)))


def backbone_label(backbone: str, rows: pd.DataFrame) -> str:
    """The backbone's name, marked when its numbers come from random weights."""
    random = bool(rows["random_init"].fillna(False).astype(bool).any())
    return backbone + (" (random weights)" if random else "")


def _cell(row: pd.Series) -> str:
    text = f"{row['value']:.3f}"
    low, high = row.get("ci_low"), row.get("ci_high")
    if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
        text += f" [{low:.3f}, {high:.3f}]"
    reuse = row.get("test_reuse")
    if isinstance(reuse, (int, float)) and not math.isnan(reuse) and reuse > 0:
        text += f" (test re-used x{int(reuse)})"
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
        lines.append(f"| {dataset} | {backbone_label(backbone, group)} | " + " | ".join(by_setting.get(s, "–") for s in settings) + " |")
    if rows["random_init"].fillna(False).astype(bool).any():
        lines += ["", "Rows marked '(random weights)' come from randomly initialised backbones: not a model comparison."]
    curves = fewshot_curves(records, metric)
    if not curves.empty:
        lines += ["", fewshot_table(curves, metric)]
    return "\n".join(lines)


def fewshot_table(curves: pd.DataFrame, metric: str = HEADLINE_METRIC) -> str:
    """Few-shot: one row per (dataset, backbone, probe), one column per shots, mean ± std over seeds."""
    shots = sorted(curves["shots"].unique(), key=_shots_order)
    lines = [
        f"Few-shot test {metric}: mean ± std over seeds, by patients per class",
        "",
        "| dataset | backbone | probe | " + " | ".join(shots) + " |",
        "|---|---|---|" + "---|" * len(shots),
    ]
    for (dataset, backbone, setting), group in curves.groupby(["dataset", "backbone", "setting"]):
        cells = {r["shots"]: f"{r['value']:.3f} ± {r.get('macro_std', float('nan')):.3f}" for _, r in group.iterrows()}
        probe = setting.removeprefix("fewshot-")
        kinds = {h.get("probe") for h in group["hyperparameters"] if isinstance(h, dict) and h.get("probe")}
        probe += f" ({', '.join(sorted(kinds))})" if kinds else ""
        lines.append(f"| {dataset} | {backbone_label(backbone, group)} | {probe} | " + " | ".join(cells.get(n, "–") for n in shots) + " |")
    return "\n".join(lines)

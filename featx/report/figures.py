"""Figures: headline numbers with their intervals, for people who would rather look."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from featx.report.tables import HEADLINE_METRIC, _shots_order, backbone_label, fewshot_curves, headline  # noqa: E402


def _panels(datasets: list[str]) -> tuple[plt.Figure, list[plt.Axes]]:
    """One panel per dataset, side by side."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    return fig, list(axes[0])


def _save(fig: plt.Figure, axes: list[plt.Axes], out: str | Path) -> Path:
    """Chance line, legend, layout, PNG."""
    for ax in axes:
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0.0, 1.0)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_summary(records: pd.DataFrame, out: str | Path, metric: str = HEADLINE_METRIC) -> Path | None:
    """One bar panel per dataset: settings x backbones, with 95% interval whiskers."""
    rows = headline(records, metric)
    if rows.empty:
        return None
    datasets = sorted(rows["dataset"].unique())
    fig, axes = _panels(datasets)
    for ax, dataset in zip(axes, datasets):
        subset = rows[rows["dataset"] == dataset]
        settings = sorted(subset["setting"].unique())
        backbones = sorted(subset["backbone"].unique())
        width = 0.8 / len(backbones)
        for b, backbone in enumerate(backbones):
            values, lows, highs = [], [], []
            for setting in settings:
                match = subset[(subset["backbone"] == backbone) & (subset["setting"] == setting)]
                value = float(match["value"].iloc[0]) if len(match) else np.nan
                low = float(match["ci_low"].iloc[0]) if len(match) and match["ci_low"].notna().iloc[0] else value
                high = float(match["ci_high"].iloc[0]) if len(match) and match["ci_high"].notna().iloc[0] else value
                values.append(value)
                lows.append(max(value - low, 0.0))
                highs.append(max(high - value, 0.0))
            x = np.arange(len(settings)) + b * width
            label = backbone_label(backbone, subset[subset["backbone"] == backbone])
            ax.bar(x, values, width, yerr=[lows, highs], capsize=3, label=label)
        ax.set_xticks(np.arange(len(settings)) + 0.4 - width / 2, settings)
        ax.set_title(dataset)
        ax.set_ylabel(f"test {metric}")
    return _save(fig, axes, out)


def plot_fewshot(records: pd.DataFrame, out: str | Path, metric: str = HEADLINE_METRIC) -> Path | None:
    """Few-shot curves (the paper's Figure 5): mean over seeds against patients per class, ± std band."""
    curves = fewshot_curves(records, metric)
    if curves.empty:
        return None
    datasets = sorted(curves["dataset"].unique())
    fig, axes = _panels(datasets)
    for ax, dataset in zip(axes, datasets):
        subset = curves[curves["dataset"] == dataset]
        shots = sorted(subset["shots"].unique(), key=_shots_order)
        for (backbone, setting), group in subset.groupby(["backbone", "setting"]):
            label = f"{backbone_label(backbone, group)} {setting.removeprefix('fewshot-')}"
            group = group.set_index("shots").reindex(shots)
            mean = group["value"].to_numpy(dtype=float)
            std = group["macro_std"].to_numpy(dtype=float) if "macro_std" in group else np.zeros_like(mean)
            x = np.arange(len(shots))
            ax.plot(x, mean, marker="o", label=label)
            ax.fill_between(x, mean - std, mean + std, alpha=0.2)
        ax.set_xticks(np.arange(len(shots)), shots)
        ax.set_xlabel("patients per class")
        ax.set_ylabel(f"test {metric}")
        ax.set_title(f"{dataset}: few-shot")
    return _save(fig, axes, out)

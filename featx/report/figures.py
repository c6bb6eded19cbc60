"""The paper's figures from result records (matplotlib, PNG and SVG): ranks, linear bars, decoders, few-shot."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: searchable and editable
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from featx.report.experiments import Experiments, shots_sorted  # noqa: E402
from featx.report.ranks import Ranks, n_models  # noqa: E402

DPI = 100
PANEL_INCHES = (4.2, 3.4)
PANELS_PER_ROW = 4


@dataclass
class Drawn:
    """A figure written as PNG and SVG, with its pixel size."""

    key: str
    title: str
    png: Path
    svg: Path
    size_px: tuple[int, int]  # (width, height) of the PNG
    note: str = ""  # what was left out of it, shown beside it


@dataclass
class Missing:
    """A figure that was not drawn, and why (shown in its place)."""

    key: str
    title: str
    reason: str


Figure = Drawn | Missing


def panels(n: int, *, width: float = PANEL_INCHES[0], height: float = PANEL_INCHES[1]) -> tuple[plt.Figure, list[plt.Axes]]:
    """A grid of ``n`` panels, at most four per row; spare panels hidden."""
    columns = min(n, PANELS_PER_ROW)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, dpi=DPI)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def save(fig: plt.Figure, out_dir: Path, key: str, title: str) -> Drawn:
    """Write ``key``.png and ``key``.svg at the figure's own size (no tight cropping, so sizes are predictable)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    width_chars = max(20, int(fig.get_size_inches()[0] * 11))
    fig.suptitle("\n".join(textwrap.wrap(title, width_chars)), fontsize=10)
    fig.tight_layout()
    png, svg = out_dir / f"{key}.png", out_dir / f"{key}.svg"
    fig.savefig(png, dpi=DPI)
    fig.savefig(svg)
    width, height = fig.get_size_inches()
    plt.close(fig)
    return Drawn(key, title, png, svg, (int(round(width * DPI)), int(round(height * DPI))))


def _errors(rows: pd.DataFrame) -> np.ndarray:
    values = rows["value"].astype(float)
    low = rows["ci_low"].astype(float).fillna(values)
    high = rows["ci_high"].astype(float).fillna(values)
    return np.vstack([(values - low).clip(lower=0).fillna(0), (high - values).clip(lower=0).fillna(0)])


def rank_figure(ranks: Ranks, out_dir: Path) -> Figure:
    """Figure 1: rank per dataset and the mean rank over classification and over segmentation datasets."""
    key, title = "fig1_ranks", "Figure 1: cross-task ranks (1 = best)"
    if n_models(ranks) < 2:
        return Missing(key, title, "ranks need at least two models with results on the same setting")
    fig, (left, right) = panels(2)
    models = list(ranks.per_dataset.index)
    columns = list(ranks.per_dataset.columns)
    for model in models:
        left.plot(range(len(columns)), ranks.per_dataset.loc[model].to_numpy(dtype=float), marker="o", label=model)
    left.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    left.set_ylabel("rank")
    left.invert_yaxis()
    left.set_title("rank per dataset", fontsize=9)
    left.legend(fontsize=6)
    if {"classification", "segmentation"} <= set(ranks.mean.columns):
        x, y = ranks.mean["segmentation"], ranks.mean["classification"]
        right.scatter(x, y)
        for model in models:
            right.annotate(model, (x[model], y[model]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        right.margins(0.25)  # room for the labels
        right.set_xlabel("mean segmentation rank")
        right.set_ylabel("mean classification rank")
        right.invert_xaxis()
        right.invert_yaxis()
    else:
        task = ranks.mean.columns[0]
        right.barh(models, ranks.mean[task].to_numpy(dtype=float))
        right.set_xlabel(f"mean {task} rank ({len(ranks.datasets[task])} datasets)")
        right.invert_yaxis()
        right.tick_params(axis="y", labelsize=7)
    right.set_title("mean rank per task", fontsize=9)
    return save(fig, out_dir, key, title)


def _bars(ax: plt.Axes, rows: pd.DataFrame, labels: list[str]) -> None:
    found = {r["model"]: r for _, r in rows.iterrows()}
    present = [m for m in labels if m in found]
    picked = pd.DataFrame([found[m] for m in present])
    values = picked["value"].astype(float).fillna(0).to_numpy()
    ax.bar(range(len(present)), values, yerr=_errors(picked), capsize=3, color=[f"C{labels.index(m)}" for m in present])
    for i, model in enumerate(present):
        if found[model].get("conflict"):
            ax.text(i, 0.05, "conflict", rotation=90, ha="center", fontsize=7)
    ax.set_xticks(range(len(present)), present, rotation=30, ha="right", fontsize=7)


def linear_bars(experiments: Experiments, out_dir: Path) -> Figure:
    """Figure 3: linear-probe results per dataset, one bar per model, with 95% intervals."""
    key, title = "fig3_linear", "Figure 3: linear probe per dataset (95% interval)"
    cells = experiments.cells
    rows = cells[cells["section"].astype(str).str.startswith("linear") & (cells["task"] == "classification")] if len(cells) else cells
    if rows.empty:
        return Missing(key, title, "no linear-probe test results (run `featx probe --setting linear`)")
    columns = sorted({(r["section"], r["column"]) for _, r in rows.iterrows()})
    models = sorted(rows["model"].unique())
    fig, axes = panels(len(columns))
    for ax, (section, column) in zip(axes, columns):
        _bars(ax, rows[(rows["section"] == section) & (rows["column"] == column)], models)
        ax.set_title(column if section == "linear" else f"{column}: {section}", fontsize=9)
        ax.set_ylabel(f"test {rows['metric'].iloc[0]}")
        ax.set_ylim(0, 1)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    return save(fig, out_dir, key, title)


def decoder_comparison(experiments: Experiments, out_dir: Path) -> Figure:
    """Figure 4: linear vs U-Net decoder per segmentation dataset, per model."""
    key, title = "fig4_decoders", "Figure 4: linear vs U-Net decoder (95% interval)"
    cells = experiments.cells
    seg = cells[cells["task"] == "segmentation"] if len(cells) else cells
    linear = seg[seg["section"].astype(str).str.contains("linear")] if len(seg) else seg
    unet = seg[seg["section"].astype(str).str.contains("unet")] if len(seg) else seg
    if linear.empty or unet.empty:
        have = "no segmentation results" if seg.empty else f"segmentation settings {sorted(seg['section'].unique())}"
        return Missing(key, title, f"needs segmentation results of both a linear and a U-Net decoder; found {have}")
    both = pd.concat([linear.assign(decoder="linear"), unet.assign(decoder="U-Net")])
    models = sorted(both["model"].unique())
    fig, axes = panels(len(models))
    for ax, model in zip(axes, models):
        rows = both[both["model"] == model]
        columns = sorted(rows["column"].unique())
        for d, decoder in enumerate(("linear", "U-Net")):
            part = rows[rows["decoder"] == decoder].set_index("column").reindex(columns)
            x = np.arange(len(columns)) + (d - 0.5) * 0.4
            ax.bar(x, part["value"].astype(float).fillna(0), 0.4, yerr=_errors(part), capsize=3, label=decoder)
        ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(model, fontsize=9)
        ax.set_ylabel(f"test {rows['metric'].iloc[0]}")
        ax.legend(fontsize=7)
    return save(fig, out_dir, key, title)


def fewshot_curves(experiments: Experiments, out_dir: Path) -> Figure:
    """Figure 5: few-shot mean over seeds against patients per class, with a ± std band."""
    key, title = "fig5_fewshot", "Figure 5: few-shot (mean ± std over seeds)"
    cells = experiments.fewshot
    if cells.empty:
        return Missing(key, title, "no few-shot results (run `featx probe --setting fewshot`)")
    columns = sorted(cells["column"].unique())
    fig, axes = panels(len(columns))
    for ax, column in zip(axes, columns):
        rows = cells[cells["column"] == column]
        shots = shots_sorted(rows["shots"])
        for (model, section), group in rows.groupby(["model", "section"]):
            group = group.set_index("shots").reindex(shots)
            mean = group["value"].to_numpy(dtype=float)
            spread = group["spread"].to_numpy(dtype=float)
            x = np.arange(len(shots))
            ax.plot(x, mean, marker="o", label=f"{model} {section.removeprefix('fewshot-')}")
            ax.fill_between(x, mean - np.nan_to_num(spread), mean + np.nan_to_num(spread), alpha=0.2)
        ax.set_xticks(range(len(shots)), shots)
        ax.set_xlabel("patients per class")
        ax.set_ylabel(f"test {rows['metric'].iloc[0]}")
        ax.set_ylim(0, 1)
        ax.set_title(column, fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    return save(fig, out_dir, key, title)

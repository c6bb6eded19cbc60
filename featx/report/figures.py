"""The paper's figures from result records (matplotlib, PNG and SVG): ranks, linear bars, decoders, few-shot."""

from __future__ import annotations

import math
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


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")


def dodge(i: int, n: int, width: float = 0.3) -> float:
    """The x offset of series ``i`` of ``n`` so that equal values side by side stay distinguishable."""
    return 0.0 if n < 2 else (i - (n - 1) / 2) * width / (n - 1)


def value_limits(ax: plt.Axes, rows: pd.DataFrame) -> None:
    """Y axis from just below the lowest interval (0.45 at most, so chance shows) to just above 1: a value
    at 1.000 and its interval stay visible, markers are not cut off."""
    lows = pd.concat([rows["value"], rows["ci_low"]]).astype(float)
    low = float(np.nanmin(lows)) if np.isfinite(lows).any() else 0.0
    ax.set_ylim(max(0.0, min(0.45, low - 0.05)), 1.04)


def save(fig: plt.Figure, out_dir: Path, key: str, title: str) -> Drawn:
    """Write ``key``.png and ``key``.svg at the figure's own size (no tight cropping, so sizes are predictable).

    The title is not drawn into the figure: the page (HTML caption, markdown heading) gives it once.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
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
    for i, model in enumerate(models):  # tied ranks coincide: dodged, each its own marker and line style
        x = np.arange(len(columns)) + dodge(i, len(models), 0.2)
        left.plot(x, ranks.per_dataset.loc[model].to_numpy(dtype=float), marker=MARKERS[i % len(MARKERS)],
                  linestyle=LINESTYLES[i % len(LINESTYLES)], label=model, clip_on=False)
    left.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    left.set_ylabel("rank")
    left.invert_yaxis()
    left.set_title("rank per dataset", fontsize=9)
    left.legend(fontsize=6)
    if {"classification", "segmentation"} <= set(ranks.mean.columns):
        x, y = ranks.mean["segmentation"], ranks.mean["classification"]
        for i, model in enumerate(models):
            right.scatter(x[model], y[model], marker=MARKERS[i % len(MARKERS)], color=f"C{i}", clip_on=False)
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


def interval_box(ax: plt.Axes, x: float, low: float, high: float, colour: str, width: float = 0.5) -> None:
    """A shaded box over the 95% interval, so the interval reads at a glance (a line at 1.000 when it is [1, 1])."""
    if np.isfinite(low) and np.isfinite(high):
        ax.add_patch(plt.Rectangle((x - width / 2, low), width, max(high - low, 0.004), color=colour, alpha=0.5,
                                   lw=0, clip_on=False))


def _points(ax: plt.Axes, rows: pd.DataFrame, labels: list[str]) -> None:
    """One point per model on its shaded 95% interval (a bar would hide an interval at 1.000)."""
    found = {r["model"]: r for _, r in rows.iterrows()}
    present = [m for m in labels if m in found]
    for i, model in enumerate(present):
        picked = pd.DataFrame([found[model]])
        if found[model].get("conflict"):
            ax.text(i, 0.5, "conflict", rotation=90, ha="center", va="center", fontsize=7)
            continue
        n = labels.index(model)
        interval_box(ax, i, float(found[model]["ci_low"]), float(found[model]["ci_high"]), f"C{n}")
        ax.errorbar([i], picked["value"].astype(float), yerr=_errors(picked), fmt=MARKERS[n % len(MARKERS)],
                    color=f"C{n}", capsize=4, markersize=6, clip_on=False)
    ax.set_xticks(range(len(present)), present, rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(present) - 0.4)


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
        _points(ax, rows[(rows["section"] == section) & (rows["column"] == column)], models)
        ax.set_title(column if section == "linear" else f"{column}: {section}", fontsize=9)
        ax.set_ylabel(f"test {rows['metric'].iloc[0]}")
        value_limits(ax, rows)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.grid(axis="y", alpha=0.3)
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
            x = np.arange(len(columns)) + dodge(d, 2)
            for xi, low, high in zip(x, part["ci_low"].astype(float), part["ci_high"].astype(float)):
                interval_box(ax, xi, low, high, f"C{d}", width=0.25)
            ax.errorbar(x, part["value"].astype(float), yerr=_errors(part), fmt=MARKERS[d], color=f"C{d}", capsize=4,
                        markersize=6, label=decoder, clip_on=False)
        ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(columns) - 0.4)
        value_limits(ax, both)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(model, fontsize=9)
        ax.set_ylabel(f"test {rows['metric'].iloc[0]}")
        ax.legend(fontsize=7)
    return save(fig, out_dir, key, title)


def fewshot_curves(experiments: Experiments, out_dir: Path) -> Figure:
    """Figure 5: few-shot mean over seeds against patients per class, with a ± std band."""
    key, title = "fig5_fewshot", "Figure 5: few-shot (mean ± std over seeds, error bars)"
    cells = experiments.fewshot
    if cells.empty:
        return Missing(key, title, "no few-shot results (run `featx probe --setting fewshot`)")
    columns = sorted(cells["column"].unique())
    fig, axes = panels(len(columns))
    for ax, column in zip(axes, columns):
        rows = cells[cells["column"] == column]
        shots = shots_sorted(rows["shots"])
        series = list(rows.groupby(["model", "section"]))
        for i, ((model, section), group) in enumerate(series):  # lines that coincide: dodged, own marker and style
            group = group.set_index("shots").reindex(shots)
            mean = group["value"].to_numpy(dtype=float)
            spread = np.nan_to_num(group["spread"].to_numpy(dtype=float))
            x = np.arange(len(shots)) + dodge(i, len(series), 0.25)
            ax.errorbar(x, mean, yerr=spread, marker=MARKERS[i % len(MARKERS)], linestyle=LINESTYLES[i % len(LINESTYLES)],
                        color=f"C{i}", capsize=3, markersize=5, label=f"{model} {section.removeprefix('fewshot-')}",
                        clip_on=False)
        ax.set_xticks(range(len(shots)), shots)
        ax.set_xlabel("patients per class")
        ax.set_ylabel(f"test {rows['metric'].iloc[0]}")
        value_limits(ax, rows.assign(ci_low=rows["value"].astype(float) - rows["spread"].astype(float).fillna(0)))
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(column, fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    return save(fig, out_dir, key, title)

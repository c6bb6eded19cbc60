"""`featx backbones`: the backbones featx knows, their features, and whether weights are here."""

from __future__ import annotations

import json
from typing import Optional

import typer


def backbones_command(
    size: list[int] = typer.Option([224, 448], "--size", help="Resolutions to show the patch grid at (repeatable)."),
    name: Optional[list[str]] = typer.Option(
        None, "--name", help="Only these backbones (repeatable; any timm model name works too)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per backbone instead of a table."),
) -> None:
    """List backbone names, parameter counts, feature dims, patch grids and locally found weights."""
    from featx.backbones import describe_backbone, list_backbones
    from featx.backbones.weights import featx_weights_dir, hf_cache_dir, torch_hub_checkpoints_dir

    sizes = tuple(int(s) for s in size)
    names = list(name) if name else list_backbones()
    rows = [describe_backbone(n, sizes=sizes) for n in names]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    grid_heads = [f"grid@{s}" for s in sizes]
    header = ["name", "family", "params(M)", "dim", "patch", "native", *grid_heads, "cls", "weights"]
    table = []
    for row in rows:
        grids = []
        for s in sizes:
            grid = row["patch_grid"].get(str(s))
            grids.append(f"{grid[0]}x{grid[1]}" if grid else "-")
        table.append([
            row["name"],
            row["family"],
            "-" if row["params_m"] is None else f"{row['params_m']:.1f}",
            str(row["feature_dim"]),
            "-" if row["patch_size"] is None else str(row["patch_size"]),
            str(row["native_size"]),
            *grids,
            row["cls_policy"],
            row["weights_found"] or "not found",
        ])
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    typer.echo(
        f"\nweights looked up offline in {featx_weights_dir()}, the HF cache {hf_cache_dir()} and "
        f"{torch_hub_checkpoints_dir()}; else pass --weights FILE. Any timm model name also works. "
        f"CNN grids are the deepest layer's ('pool'). cls: cls_token = the class token; attention_pool = "
        f"the model's own attention-pooling head output (SigLIP 2 has no class token); mean_patch / "
        f"global_avg_pool = the average. See docs/backbones.md."
    )

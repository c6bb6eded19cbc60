"""`featx backbones`: the backbones featx knows, their features, and whether weights are here."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

#: the resolutions the listing shows patch grids at unless --size says otherwise
DEFAULT_SIZES = [224, 448]


def backbones_command(
    size: Annotated[list[int], typer.Option("--size", help="Resolutions to show the patch grid at (repeatable).")] = (
        DEFAULT_SIZES),
    name: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045 - typer needs Optional here
        "--name", help="Only these backbones (repeatable; any timm model name works too).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per backbone instead of a table.")] = False,
) -> None:
    """List backbone names, parameter counts, feature dims, patch grids and locally found weights."""
    # data only: the built-in names are described from their table rows, without importing torch
    from featx.backbones.listing import describe_backbone
    from featx.backbones.locations import featx_weights_dir, hf_cache_dir, torch_hub_checkpoints_dir
    from featx.backbones.registry import check_backbone_name, list_backbones

    sizes = tuple(int(s) for s in size)
    names = list(name) if name else list_backbones()
    for each in names:
        check_backbone_name(each)  # a typo is refused before anything is described
    rows = [describe_backbone(n, sizes=sizes) for n in names]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    for line in _table(rows, sizes):
        typer.echo(line)
    typer.echo(
        f"\nweights looked up offline in {featx_weights_dir()}, the HF cache {hf_cache_dir()} and "
        f"{torch_hub_checkpoints_dir()}; else pass --weights FILE. Any timm model name also works. "
        f"CNN grids are the deepest layer's ('pool'). cls: cls_token = the class token; attention_pool = "
        f"the model's own attention-pooling head output (SigLIP 2 has no class token); mean_patch / "
        f"global_avg_pool = the average. See docs/backbones.md."
    )


def _table(rows: list[dict], sizes: tuple[int, ...]) -> list[str]:
    """The listing as aligned text lines, header first."""
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
    lines = []
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for line in [header, *table]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return lines

"""`featx cache`: what a cache root holds, and one store's provenance."""

from __future__ import annotations

import json
from pathlib import Path

import typer

cache_app = typer.Typer(help="Feature stores in a cache: list them, show one store's provenance.", no_args_is_help=True)


@cache_app.command("ls")
def list_command(cache: Path = typer.Argument(..., help="Cache root folder.")) -> None:
    """Every store under CACHE: key, state, rows, failures, image size, weights, layers, patch tokens, preprocessing."""
    from featx.cache.inventory import list_stores

    stores = list_stores(cache)
    if stores.empty:
        typer.echo(f"no feature stores under {cache}")
        return
    columns = ["dataset", "backbone", "key", "state", "rows", "written", "failed", "img_size", "weights", "layers",
               "patch_tokens", "preprocessing", "size_mib"]
    typer.echo(stores[[c for c in columns if c in stores]].to_string(index=False))


@cache_app.command("info")
def info_command(store: str = typer.Argument(..., help="A store folder (<key>.zarr) or its URL.")) -> None:
    """One store's provenance and layout (its featx attributes) as JSON."""
    from featx.cache import FeatureStore

    opened = FeatureStore.open(store, allow_partial=True)
    typer.echo(json.dumps(opened.attrs, indent=2, default=str))

"""`featx cache`: what a cache root holds, and one store's provenance."""

from __future__ import annotations

import json
from pathlib import Path

import typer

cache_app = typer.Typer(
    help="Feature stores in a cache: list them, show provenance, verify checksums.", no_args_is_help=True
)


@cache_app.command("ls")
def list_command(cache: Path = typer.Argument(..., help="Cache root folder.")) -> None:
    """Every store under CACHE: dataset, backbone, key, published or partial, rows, failures, size."""
    from featx.cache.inventory import list_stores

    stores = list_stores(cache)
    if stores.empty:
        typer.echo(f"no feature stores under {cache}")
        return
    columns = ["dataset", "backbone", "key", "state", "rows", "written", "failed", "img_size", "random_init", "size_mib"]
    typer.echo(stores[[c for c in columns if c in stores]].to_string(index=False))


@cache_app.command("info")
def info_command(store: str = typer.Argument(..., help="A store folder (<key>.zarr) or its URL.")) -> None:
    """One store's provenance and layout (its featx attributes) as JSON."""
    from featx.cache import FeatureStore

    opened = FeatureStore.open(store, allow_partial=True)
    typer.echo(json.dumps(opened.attrs, indent=2, default=str))


@cache_app.command("verify")
def verify_command(target: str = typer.Argument(..., help="A store (<key>.zarr folder or URL) or a cache root.")) -> None:
    """Read every chunk; name each damaged array, chunk and row range. Exit 1 if anything is damaged."""
    from featx.cache import FeatureStore
    from featx.cache.verify import stores_under, verify_store

    stores = stores_under(target)
    if not stores:
        typer.echo(f"no published feature stores under {target}")
        return
    damaged = 0
    for path in stores:
        report = verify_store(FeatureStore.open(path, allow_partial=True))
        if report.unchecked:
            typer.secho(
                f"{path}: {len(report.unchecked)} arrays have no checksums (made before format 2); "
                "only missing chunks and non-finite rows can be found there",
                fg=typer.colors.YELLOW,
            )
        if report.ok:
            typer.echo(f"ok       {path} ({report.chunks_read} chunks)")
            continue
        damaged += 1
        typer.secho(f"DAMAGED  {path}: {len(report.damage)} chunks", fg=typer.colors.RED)
        for damage in report.damage:
            typer.echo(f"  {damage}")
    if damaged:
        typer.secho(f"{damaged} of {len(stores)} stores damaged: re-extract them (featx extract)", fg=typer.colors.RED)
        raise typer.Exit(1)

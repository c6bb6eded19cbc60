"""`featx extract`: run a frozen backbone once over a dataset into a feature store."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from featx.cli.options import parse_key_values


def extract_command(
    dataset: str = typer.Option(..., help="Dataset adapter name (`featx datasets`), e.g. csv."),
    root: Path = typer.Option(..., help="The dataset as downloaded (a CSV file for --dataset csv)."),
    backbone: str = typer.Option(..., help="Backbone name (`featx backbones`), e.g. dinov2_vitl14."),
    size: int = typer.Option(224, help="Square input resolution in pixels."),
    cache: Path = typer.Option(..., help="Cache root folder holding the feature stores."),
    weights: Optional[Path] = typer.Option(None, help="Local weights file (safetensors, pth, bin)."),
    random_init: bool = typer.Option(False, "--random-init", help="Use random weights (recorded in the store)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    batch_size: int = typer.Option(64, help="Images per forward pass."),
    workers: int = typer.Option(2, help="DataLoader worker processes decoding images."),
    n_last: int = typer.Option(4, help="Store CLS and pooled tokens of this many last blocks."),
    patch_tokens: bool = typer.Option(False, "--patch-tokens", help="Also store patch tokens (segmentation)."),
    patch_blocks: Optional[int] = typer.Option(None, "--patch-blocks", help="Patch tokens for only the last N of the --n-last blocks (U-Net: 5, linear decoder: 1)."),
    patch_format: str = typer.Option("float16", "--patch-format", help="Patch tokens as float16, or int8 with a per-token scale (about half the bytes)."),
    block_rows: Optional[int] = typer.Option(None, help="Rows per store block (default: chosen from sizes)."),
    name: Optional[str] = typer.Option(None, help="Dataset name in the cache (csv: default the CSV's stem)."),
    modality: Optional[str] = typer.Option(None, help="csv: xray, ct, mri or other (sets intensity defaults)."),
    intensity: Optional[str] = typer.Option(None, help="Override intensity rule: minmax, window or percentile."),
    window: Optional[tuple[float, float]] = typer.Option(None, help="CT window low high, in HU."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Adapter option key=value (repeatable)."),
    model_override: Optional[list[str]] = typer.Option(
        None, "--model-override", help="Architecture override key=value, e.g. depth=2 (random or matching weights)."
    ),
    scheduler: Optional[str] = typer.Option(
        None, help="Dask scheduler address (tcp://host:8786): spread blocks over its workers (GPUs, nodes)."
    ),
) -> None:
    """Extract features of every sample (and slice) once into a Zarr feature store."""
    from featx.datasets import build_index
    from featx.pipeline.distributed import BackboneRequest, dask_runner
    from featx.pipeline.extract import extract
    from featx.pipeline.preprocess import PreprocessConfig

    if patch_format not in ("float16", "int8"):
        raise typer.BadParameter(f"--patch-format: expected float16 or int8, got {patch_format!r}")
    if patch_blocks is not None and not (patch_tokens and 1 <= patch_blocks <= n_last):
        raise typer.BadParameter(f"--patch-blocks {patch_blocks}: needs --patch-tokens and 1 <= N <= --n-last ({n_last})")
    options = parse_key_values(option, "--option")
    if dataset == "csv":
        options.setdefault("name", name)
        options.setdefault("modality", modality or "other")
    index = build_index(dataset, root, **{k: v for k, v in options.items() if v is not None})
    for problem in index.problems:
        typer.secho(f"quarantined: {problem}", fg=typer.colors.YELLOW, err=True)
    preprocess = PreprocessConfig.for_modality(index.modality, size, intensity=intensity, window=window)
    request = BackboneRequest(
        name=backbone,
        img_size=size,
        weights=str(weights) if weights else None,
        random_init=random_init,
        n_last=n_last,
        patch_tokens=patch_tokens,
        model_overrides=tuple(parse_key_values(model_override, "--model-override").items()),
    )
    loaded = request.load()
    if loaded.random_init:
        typer.secho(f"{backbone}: RANDOM weights (--random-init); results will say so", fg=typer.colors.YELLOW)
    with contextlib.ExitStack() as stack:
        runner = None
        if scheduler:
            from distributed import Client

            client = stack.enter_context(Client(scheduler))
            runner = dask_runner(client, index, request, preprocess, device=device, batch_size=batch_size)
        result = extract(
            index,
            loaded,
            preprocess,
            cache,
            device=device,
            batch_size=batch_size,
            num_workers=workers,
            block_rows=block_rows,
            runner=runner,
            patch_format=patch_format,
            patch_blocks=patch_blocks,
        )
    verb = "up to date" if result.reused else f"extracted {result.rows_extracted} rows ({result.rows_per_second:.1f} rows/s)"
    if result.rows_reused:
        verb += f", {result.rows_reused} unchanged rows copied from the previous store"
    typer.echo(f"store: {result.path}")
    typer.echo(f"cache key: {result.key}  ({result.n_rows} rows, {verb})")
    if result.n_failed:
        typer.secho(f"{result.n_failed} rows could not be read and are marked failed in the store:", fg=typer.colors.RED)
        for row in result.failures.head(20).itertuples():
            typer.echo(f"  row {row.row}: {row.error}")
        if result.n_failed > 20:
            typer.echo(f"  ... and {result.n_failed - 20} more (FeatureStore.failures())")

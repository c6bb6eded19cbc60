"""`featx extract`: run a frozen backbone once over a dataset into a feature store."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from featx.cli.checks import (
    check_cache_folder,
    check_device,
    folder_is_writable,
    read_only_error,
    request_fields,
    up_to_date_store,
    weights_hash_of,
)
from featx.cli.interrupts import keep_work_on_interrupt
from featx.cli.options import index_from_options, parse_key_values

FINGERPRINT_MEANING = {
    "stat": "stat (size and mtime; a file rewritten with both unchanged is missed: --fingerprint content)",
    "content": "content (a hash of every input file's bytes)",
}


def extract_command(
    dataset: Optional[str] = typer.Option(None, help="Dataset adapter name (`featx datasets`), e.g. csv."),
    root: Optional[Path] = typer.Option(None, help="The dataset as downloaded (a CSV file for --dataset csv)."),
    backbone: Optional[str] = typer.Option(None, help="Backbone name (`featx backbones`), e.g. dinov2_vitl14."),
    size: int = typer.Option(224, help="Square input resolution in pixels."),
    cache: Optional[Path] = typer.Option(None, help="Cache root folder holding the feature stores."),
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
    fingerprint: str = typer.Option(
        "stat", help="How an unchanged input is recognised: stat (size+mtime, fast) or content (hash of the bytes)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Rebuild the store of this name even if it holds another source or other samples."
    ),
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
    pixel_cache: bool = typer.Option(
        True, "--pixel-cache/--no-pixel-cache",
        help="Decode every raw file once into the dataset's pixel store and feed backbones from it (default); "
        "--no-pixel-cache decodes the raw files for this run only.",
    ),
    decode_workers: Optional[int] = typer.Option(
        None, help="Processes decoding raw files into the pixel store (default: every CPU core)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="A study YAML (datasets x backbones x sizes): extract every store, one summary."
    ),
) -> object:
    """Extract features of every sample (and slice) once into a Zarr feature store.

    Returns the ExtractResult (what `--config` runs collect for their summary).
    """
    from featx.cache.store import FeatureStore, store_dir
    from featx.pipeline.pixel_feed import PixelCache
    from featx.datasets.preprocess import PreprocessConfig
    from featx.datasets.stamps import row_stamps

    if config is not None:
        from featx.cli.study import extract_study

        return extract_study(config)
    if dataset is None or root is None or backbone is None or cache is None:
        raise typer.BadParameter("give --dataset, --root, --backbone and --cache, or --config STUDY.yaml")
    if fingerprint not in FINGERPRINT_MEANING:
        raise typer.BadParameter(f"--fingerprint: expected stat or content, got {fingerprint!r}")
    check_device(device)
    check_cache_folder(cache)
    if patch_format not in ("float16", "int8"):
        raise typer.BadParameter(f"--patch-format: expected float16 or int8, got {patch_format!r}")
    if patch_blocks is not None and not (patch_tokens and 1 <= patch_blocks <= n_last):
        raise typer.BadParameter(f"--patch-blocks {patch_blocks}: needs --patch-tokens and 1 <= N <= --n-last ({n_last})")
    index = index_from_options(dataset, root, option, name, modality)
    preprocess = PreprocessConfig.for_modality(index.modality, size, intensity=intensity, window=window)
    overrides = parse_key_values(model_override, "--model-override")
    fields = request_fields(backbone, size, n_last, patch_tokens, overrides, random_init, seed=0)
    done = up_to_date_store(cache, index.dataset, fields, weights_hash_of(weights, random_init), preprocess.to_dict(), index)
    if done is not None:
        return _say_up_to_date(done, block_rows)
    writable = folder_is_writable(store_dir(cache, index.dataset, backbone))
    if not writable and not any(store_dir(cache, index.dataset, backbone).glob("*.zarr")):
        raise read_only_error(cache)
    from featx.backbones.request import BackboneRequest

    request = BackboneRequest(
        name=backbone,
        img_size=size,
        weights=str(weights) if weights else None,
        random_init=random_init,
        n_last=n_last,
        patch_tokens=patch_tokens,
        model_overrides=tuple(overrides.items()),
    )
    loaded = request.load()
    from featx.pipeline.extract import store_key

    final = store_dir(cache, index.dataset, loaded.spec.name) / f"{store_key(index, loaded, preprocess)[0]}.zarr"
    if not writable:
        if final.exists() and FeatureStore.open(final).matches_index(index, row_stamps(index.table)):
            return _say_up_to_date(final, block_rows)
        raise read_only_error(cache)
    partial = final.with_name(final.name + ".partial")
    resumed = _resumable(partial) if block_rows is not None else None
    if resumed is not None:
        kept = resumed.block_rows
        if kept != block_rows and resumed.matches_index(index, row_stamps(index.table)):
            typer.secho(
                f"note: --block-rows {block_rows} ignored: resuming {partial}, laid out with {kept} rows per block",
                fg=typer.colors.YELLOW,
            )
    if loaded.random_init:
        typer.secho(f"{backbone}: RANDOM weights (--random-init); results will say so", fg=typer.colors.YELLOW)
    from featx.pipeline.dask_extract import dask_runner
    from featx.pipeline.extract import extract

    with contextlib.ExitStack() as stack:
        stack.enter_context(keep_work_on_interrupt(partial))
        runner, client = None, None
        if scheduler:
            from distributed import Client

            client = stack.enter_context(Client(scheduler))
        pixels = PixelCache(cache, workers=decode_workers, client=client, fingerprint=fingerprint) if pixel_cache else None
        if client is not None:
            runner = dask_runner(client, index, request, preprocess, device=device, batch_size=batch_size,
                                 pixel_cache=pixels)
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
            source_root=root,
            replace=replace,
            fingerprint=fingerprint,
            pixel_cache=pixels,
            patch_format=patch_format,
            patch_blocks=patch_blocks,
        )
    verb = "up to date" if result.reused else f"extracted {result.rows_extracted} rows ({result.rows_per_second:.1f} rows/s)"
    if result.rows_reused:
        verb += f", {result.rows_reused} unchanged rows copied from the previous store"
    if pixels is not None:
        for line in pixel_summary(pixels):
            typer.echo(line)
    typer.echo(f"store: {result.path}")
    typer.echo(f"cache key: {result.key}  ({result.n_rows} rows, {verb})")
    typer.echo(f"fingerprint: {FINGERPRINT_MEANING[fingerprint]}")
    if result.n_failed:
        typer.secho(f"{result.n_failed} rows could not be read and are marked failed in the store:", fg=typer.colors.RED)
        for row in result.failures.head(20).itertuples():
            typer.echo(f"  row {row.row}: {row.error}")
        if result.n_failed > 20:
            typer.echo(f"  ... and {result.n_failed - 20} more (FeatureStore.failures())")
    if result.steady.rows:
        typer.echo(f"speed: {result.steady_rows_per_second:.1f} images/s steady; time split: "
                   f"{result.steady.times.summary()}")
    return result


def _resumable(partial: Path):
    """The partial store a run would resume, or None (absent, or laid out only in part: it is laid out again)."""
    from featx.cache.store import FeatureStore, StoreError

    if not (partial / "zarr.json").exists():
        return None
    try:
        return FeatureStore.open(partial, allow_partial=True)
    except StoreError:
        return None


@dataclass(frozen=True)
class UpToDate:
    """What an extraction with nothing to do reports (the fields of ExtractResult a study summary reads)."""

    path: Path
    n_rows: int
    n_failed: int
    reused: bool = True
    rows_extracted: int = 0
    rows_reused: int = 0


def _say_up_to_date(path: Path, block_rows: int | None) -> UpToDate:
    """The lines of an extraction with nothing to do (also for a read-only cache)."""
    from featx.cache.store import FeatureStore

    store = FeatureStore.open(path)
    typer.echo(f"store: {path}")
    typer.echo(f"cache key: {store.key}  ({store.n_rows} rows, up to date)")
    if block_rows is not None and block_rows != store.block_rows:
        typer.echo(f"note: --block-rows {block_rows} ignored: the store exists with {store.block_rows} rows per block")
    return UpToDate(path, store.n_rows, len(store.failures()))


def pixel_summary(pixels) -> list[str]:
    """One line per pixel store used: where, and whether it was decoded now or reused."""
    lines = []
    for build in pixels.builds.values():
        if build.reused:
            state = "up to date"
        else:
            rate = f"{build.images_per_second:.1f} images/s, {build.workers} processes"
            state = f"decoded {build.rows_decoded} images ({rate})"
            if build.rows_reused:
                state += f", {build.rows_reused} unchanged images copied"
        lines.append(f"pixels: {build.path} ({state})")
        if build.n_failed:
            lines.append(f"  {build.n_failed} images could not be decoded (marked failed, not read again)")
    return lines

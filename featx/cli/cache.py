"""`featx cache`: what a cache root holds, and one store's provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

cache_app = typer.Typer(
    help="Feature stores in a cache: list, show provenance, verify checksums, collect old versions, remove.", no_args_is_help=True
)


@cache_app.command("ls")
def list_command(cache: Annotated[str, typer.Argument(help="Cache root folder, or its URL (s3://bucket/prefix).")]) -> None:
    """Every store under CACHE: key, state, rows, failures, image size, weights, layers, patch tokens, intensity rule."""
    from featx.cache.inventory import list_stores
    from featx.cache.remote_cache import list_remote_stores
    from featx.cache.store import is_url

    stores = list_remote_stores(cache) if is_url(cache) else list_stores(cache)
    if stores.empty:
        typer.echo(f"no feature stores under {cache}")
        return
    columns = ["dataset", "backbone", "key", "state", "rows", "written", "failed", "img_size", "weights", "layers",
               "patch_tokens", "preprocessing", "size_mib"]
    shown = stores[[c for c in columns if c in stores]].rename(columns={"preprocessing": "intensity"})
    typer.echo(shown.to_string(index=False))  # intensity: minmax, window[L,H] or percentile[L,H] (+ resample)


@cache_app.command("info")
def info_command(store: Annotated[str, typer.Argument(help="A store folder (<key>.zarr) or its URL.")]) -> None:
    """One store's provenance and layout (its featx attributes) as JSON."""
    from featx.cache import FeatureStore

    opened = FeatureStore.open(store, allow_partial=True)
    typer.echo(json.dumps(opened.attrs, indent=2, default=str))


@cache_app.command("verify")
def verify_command(
    target: Annotated[str, typer.Argument(help="A store (<key>.zarr folder or URL) or a cache root.")],
) -> None:
    """Check metadata against its manifest, the key against its inputs, splits by patient, and every chunk;
    name each problem and damaged array, chunk and row range. Exit 1 if anything is wrong."""
    from featx.cache.remote_cache import remote_stores
    from featx.cache.store import is_url
    from featx.cache.verify import stores_under

    stores = remote_stores(target) if is_url(target) else stores_under(target)
    if not stores:
        typer.echo(f"no published feature stores under {target}")
        return
    damaged = sum(not _verify_one(path) for path in stores)
    if damaged:
        typer.secho(f"{damaged} of {len(stores)} stores damaged: re-extract them (featx extract)", fg=typer.colors.RED)
        raise typer.Exit(1)


def _verify_one(path: str) -> bool:
    """Verify one store and print what was found; whether it is sound."""
    from featx.cache import FeatureStore, StoreError
    from featx.cache.verify import verify_store

    try:
        report = verify_store(FeatureStore.open(path, allow_partial=True, check=False))
    except StoreError as error:
        typer.secho(f"DAMAGED  {error}", fg=typer.colors.RED)
        return False
    for note in report.notes:
        typer.secho(f"{path}: {note}", fg=typer.colors.YELLOW)
    if report.unchecked:
        typer.secho(f"{path}: {len(report.unchecked)} arrays have no checksums (made before format 2); "
                    "only missing chunks and non-finite rows can be found there", fg=typer.colors.YELLOW)
    if report.ok:
        typer.echo(f"ok       {path} ({report.chunks_read} chunks)")
        return True
    counts = [f"{len(report.problems)} problems"] * bool(report.problems) + [f"{len(report.damage)} chunks"] * bool(
        report.damage)
    typer.secho(f"DAMAGED  {path}: {', '.join(counts)}", fg=typer.colors.RED)
    for line in [*report.problems, *report.damage]:
        typer.echo(f"  {line}")
    return False


@cache_app.command("gc")
def gc_command(
    cache: Annotated[Path, typer.Argument(help="Cache root folder.")],
    keep: Annotated[int, typer.Option(help="Published versions to keep per store (the current one always stays).")] = 2,
) -> None:
    """Delete old published versions, keeping the newest KEEP and every version a reader has open."""
    from featx.cache.versions import version_folders

    freed = 0
    for versions in version_folders(cache.expanduser().resolve()):
        removed, held = versions.collect(keep)
        freed += len(removed)
        if removed:
            typer.echo(f"{versions.pointer}: removed versions {removed}")
        if held:
            typer.echo(f"{versions.pointer}: kept versions {held} (being read)")
    typer.echo(f"{freed} old versions removed")


@cache_app.command("push")
def push_command(
    source: Annotated[Path, typer.Argument(help="A cache root folder, or one store's pointer (<key>.zarr).")],
    destination: Annotated[str, typer.Argument(help="Where to publish: s3://bucket/prefix (any fsspec URL).")],
) -> None:
    """Upload each store's current version, then its pointer; a re-run resumes an interrupted push."""
    from featx.cache.push import push_store, stores_to_push

    for versions, relative in stores_to_push(source):
        pushed = push_store(versions, relative, destination)
        typer.echo(f"{pushed.state:<11} {pushed.store} v{pushed.version:04d}: {pushed.uploaded} objects uploaded "
                   f"({pushed.bytes_uploaded / 2**20:.1f} MiB), {pushed.skipped} already there")


@cache_app.command("rm")
def rm_command(
    store: Annotated[Path, typer.Argument(help="A store's pointer (<cache>/<dataset>/<backbone>/<key>.zarr).")],
) -> None:
    """Delete a store: every version, its partial build and its lock; refused while it is extracted or read."""
    import shutil

    from featx.cache import StoreError
    from featx.cache.lock import holder, is_locked
    from featx.cache.versions import Versions

    versions = Versions.of(store.expanduser().absolute())
    lock = versions.folder / f"{versions.key}.lock"
    if not (versions.pointer.is_symlink() or versions.directory.exists() or versions.partial.exists()):
        raise StoreError(f"{store}: no such store (give the <key>.zarr path that `featx cache ls` shows)")
    if is_locked(lock):
        raise StoreError(f"{store}: an extraction of this store is running ({holder(lock)}); wait for it to end")
    read = [n for n in versions.numbers() if versions.in_use(n)]
    if read:
        raise StoreError(f"{store}: versions {read} are being read (a probe is running); retry when it ends")
    versions.pointer.unlink(missing_ok=True)  # unpublished first: no reader can open it any more
    (versions.folder / f"{versions.key}.pointer.json").unlink(missing_ok=True)
    for folder in (versions.directory, versions.partial):
        if folder.exists():
            shutil.rmtree(folder)
    lock.unlink(missing_ok=True)
    typer.echo(f"removed {store}")

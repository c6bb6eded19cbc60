"""`featx extract --config` / `featx probe --config`: every store of a study, one summary at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pandas as pd
import typer

from featx.pipeline.study import load_study, option_args


def _command() -> click.Command:
    from featx.cli import app

    return typer.main.get_command(app)


def _expected_errors() -> tuple[type[BaseException], ...]:
    from featx.backbones import WeightsError
    from featx.cache import StoreError
    from featx.datasets import DatasetError

    return (DatasetError, StoreError, WeightsError, FileNotFoundError, ValueError, RuntimeError, click.ClickException)


def _summary(rows: list[dict[str, Any]], what: str) -> None:
    typer.echo(f"\n{what}: {len(rows)} stores")
    typer.echo(pd.DataFrame(rows).to_string(index=False))
    failed = [row for row in rows if row["state"].startswith("FAILED")]
    if failed:
        typer.secho(f"{len(failed)} of {len(rows)} failed (the others are done)", fg=typer.colors.RED)
        raise typer.Exit(1)


def extract_study(config: Path) -> None:
    """Run `featx extract` for every (dataset, backbone, size) of the study; one failure does not stop the rest."""
    from featx.cache import FeatureStore

    study = load_study(config)
    rows = []
    for job in study.jobs:
        typer.echo(f"== {job.dataset} x {job.backbone} @ {job.size}")
        row = {"dataset": job.dataset, "backbone": job.backbone, "size": job.size}
        try:
            result = _command().main(["extract", *job.args], standalone_mode=False)
        except _expected_errors() as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            rows.append(row | {"extracted": 0, "unchanged": 0, "failed": 0, "state": f"FAILED: {exc}"[:120]})
            continue
        attrs = FeatureStore.open(result.path).attrs
        version = attrs.get("version")
        rows.append(row | {
            "dataset": attrs["dataset"],  # the adapter's own name (msd: one per task)
            "extracted": result.rows_extracted,  # new, changed and previously failed rows
            "unchanged": result.n_rows if result.reused else result.rows_reused,
            "failed": result.n_failed,
            "state": f"up to date (v{version})" if result.reused else f"published v{version}",
        })
    _summary(rows, f"featx extract --config {study.path}")


def _probed_versions(out: Path) -> set[tuple[str, int | None]]:
    """(store key, store version) of every record already in ``out``."""
    if not out.exists():
        return set()
    done = set()
    for line in out.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            done.add((record.get("store_key"), record.get("store_version")))
    return done


def probe_study(config: Path) -> None:
    """Run `featx probe` on every store of the study not yet probed at its current version."""
    from featx.cache.inventory import list_stores

    study = load_study(config)
    options = dict(study.probe)
    if "out" not in options:
        raise click.UsageError(f"{study.path}: probe needs 'out' (the results file) for `featx probe --config`")
    out = Path(options.pop("out"))
    stores = list_stores(study.cache)
    rows = []
    for job in study.jobs:
        row = {"dataset": job.dataset, "backbone": job.backbone, "size": job.size}
        if job.probe is None:
            rows.append(row | {"records": 0, "state": "not probed (probe: false)"})
            continue
        match = stores[(stores["dataset"] == job.dataset) & (stores["backbone"] == job.backbone)
                       & (stores["img_size"] == job.size) & (stores["state"] == "published")] if len(stores) else stores
        if match.empty:
            rows.append(row | {"records": 0, "state": "FAILED: no published store (run featx extract --config first)"})
            continue
        store = match.sort_values("completed").iloc[-1]
        if (store["key"], store["version"]) in _probed_versions(out):
            rows.append(row | {"records": 0, "state": f"up to date (v{store['version']})"})
            continue
        before = len(_lines(out))
        try:
            args = ["probe", "--store", store["path"], "--out", str(out), *option_args(options | job.probe)]
            code = _command().main(args, standalone_mode=False)
        except _expected_errors() as exc:
            code = f"{exc}"
        if code:  # an exit status, or the error
            rows.append(row | {"records": len(_lines(out)) - before, "state": f"FAILED: {code}"[:120]})
            continue
        rows.append(row | {"records": len(_lines(out)) - before, "state": f"probed v{store['version']}"})
    _summary(rows, f"featx probe --config {study.path}")


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

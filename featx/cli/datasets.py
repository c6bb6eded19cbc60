"""`featx datasets`: list the dataset adapters, and check a download without extracting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

datasets_app = typer.Typer(
    help="Dataset adapters: list them, and check a downloaded dataset in its native layout.",
    no_args_is_help=False,
    invoke_without_command=True,
)


def _format_default(value: object) -> str:
    return "" if value is None else f"={value}"


@datasets_app.callback(invoke_without_command=True)
def datasets_main(ctx: typer.Context) -> None:
    """List the dataset adapters and their options."""
    if ctx.invoked_subcommand is not None:
        return
    from featx.datasets.registry import adapter_options, list_datasets

    for info in list_datasets():
        typer.echo(f"{info.name:22s} {info.description}")
        options = ", ".join(f"{k}{_format_default(v)}" for k, v in adapter_options(info.name).items())
        typer.echo(f"{'':22s} options: {options}")


@datasets_app.command("check")
def check(
    name: Annotated[str, typer.Argument(help="adapter name (see `featx datasets`)")],
    root: Annotated[Path, typer.Argument(help="dataset folder as downloaded (a CSV file for `csv`)")],
    option: Annotated[list[str] | None, typer.Option(
        "--option", "-o", help="adapter option key=value, repeatable (e.g. -o uncertainty=u_ones)")] = None,
    split_file: Annotated[Path | None, typer.Option(
        "--split-file", help="CSV of id,split replacing the adapter's split")] = None,
    decode: Annotated[int, typer.Option("--decode", help="also decode N samples spread over the dataset (-1: all)")] = 0,
    export_split: Annotated[Path | None, typer.Option(
        "--export-split", help="write the split in use to this CSV")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="exit with status 1 if any file is quarantined")] = False,
) -> None:
    """Validate a download: counts per split, labels per class, patients, missing or odd files."""
    from featx.datasets.check import check_dataset, parse_options
    from featx.datasets.index import DatasetError

    try:
        options = parse_options(option)
        if split_file is not None:
            options["split_file"] = str(split_file)
        report = check_dataset(name, root, decode=decode, **options)
    except DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if export_split is not None:
        from featx.datasets.splits import export_split as write_split

        write_split(report.index, export_split)
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
    if export_split is not None and not as_json:
        typer.echo(f"\nsplit written to {export_split}")
    if strict and report.problems:
        raise typer.Exit(1)

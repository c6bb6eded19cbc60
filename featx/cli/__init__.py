"""The `featx` command line: a thin layer over the Python API of the same shape."""

from __future__ import annotations

import sys

import typer

from featx.cli.backbones import backbones_command
from featx.cli.cache import cache_app
from featx.cli.datasets import datasets_app
from featx.cli.demo import demo_command
from featx.cli.extract import extract_command
from featx.cli.finetune import finetune_command
from featx.cli.probe import probe_command
from featx.cli.report import report_command

app = typer.Typer(
    name="featx",
    help="Evaluate frozen vision foundation models on radiology data: extract once, probe from the cache.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("extract")(extract_command)
app.command("probe")(probe_command)
app.command("finetune")(finetune_command)
app.command("report")(report_command)
app.command("demo")(demo_command)
app.command("backbones")(backbones_command)
app.add_typer(datasets_app, name="datasets")
app.add_typer(cache_app, name="cache")


def main() -> None:
    """Entry point: expected errors print one clear line instead of a traceback."""
    from featx.backbones import WeightsError
    from featx.cache import StoreError
    from featx.datasets import DatasetError

    try:
        app()
    except (DatasetError, StoreError, WeightsError, FileNotFoundError, ValueError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)

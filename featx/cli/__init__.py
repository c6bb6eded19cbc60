"""The `featx` command line: a thin layer over the Python API of the same shape.

Command modules import their heavy dependencies (torch, zarr, pandas) inside the
commands, so `featx --help`, `featx --version` and the listing commands start fast.
Exit statuses are documented in :mod:`featx.cli.errors`.
"""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from featx import __version__
from featx.cli.backbones import backbones_command
from featx.cli.cache import cache_app
from featx.cli.datasets import datasets_app
from featx.cli.demo import demo_command
from featx.cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, is_expected
from featx.cli.extract import extract_command
from featx.cli.finetune import finetune_command
from featx.cli.probe import probe_command
from featx.cli.report import report_command


class FeatxGroup(TyperGroup):
    """The featx command group: an expected error prints one line and exits 1, in tests as from the shell."""

    def invoke(self, ctx: click.Context) -> object:
        from featx.jobs.interrupts import Interrupted

        try:
            return super().invoke(ctx)
        except Interrupted as stop:
            typer.secho(str(stop), fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - only expected errors are caught; the rest re-raise
            if not is_expected(exc):
                raise
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    cls=FeatxGroup,
    name="featx",
    help="Evaluate frozen vision foundation models on radiology data: extract once, probe from the cache.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: flags show as --flag/--no-flag, and rich is never imported
    epilog="Exit status: 0 done (or already up to date); 1 error, nothing produced; 2 bad command line; "
    "3 partial results (the failures are listed); 130 interrupted (what was saved is kept; re-run to resume).",
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"featx {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: bool | None = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print featx's version and exit."
    ),
) -> None:
    """Options of featx itself (before the command)."""


app.command("extract")(extract_command)
app.command("probe")(probe_command)
app.command("finetune")(finetune_command)
app.command("report")(report_command)
app.command("demo")(demo_command)
app.command("backbones")(backbones_command)
app.add_typer(datasets_app, name="datasets")
app.add_typer(cache_app, name="cache")


def main() -> None:
    """Entry point (expected errors print one clear line instead of a traceback: see FeatxGroup)."""
    app()

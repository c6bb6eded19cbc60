"""Typer commands made from job types: each job field's declaration is its command-line option.

A command built here turns its flags into the job's options, builds the typed job (a bad value is
a usage error naming the flag) and hands it to the stage's run function; nothing else happens on
the command line.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from featx.cli.errors import EXIT_ERROR, is_expected
from featx.jobs.fields import Option, described, from_options

J = TypeVar("J")


def _cli_type(kind: Any, description: Option) -> Any:
    """The type Typer parses for a field (lists of text for repeatable flags, text for comma lists)."""
    if description.form in ("repeat", "pairs"):
        return Optional[list[str]]  # noqa: UP045 - Typer reads typing.Optional
    if description.form == "csv":
        return Optional[str]  # noqa: UP045
    args = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
        kind = args[0]
    return Optional[kind]  # noqa: UP045 - a required field is missing until given; the job says so


def _default(field: Any, description: Option) -> Any:
    """What the option shows as its default (comma lists as typed; repeatable flags: none)."""
    if field.default is dataclasses.MISSING or description.form in ("repeat", "pairs"):
        return None
    if description.form == "csv":
        return ",".join(str(item) for item in field.default)
    return field.default


def _metavar(kind: Any, description: Option) -> str | None:
    """How the option's value is shown in ``--help`` (switches show none)."""
    if description.form == "pairs":
        return "KEY=VALUE"
    if description.form == "csv":
        return "A,B,..."
    if description.form == "repeat":
        return "TEXT"
    names = {int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH"}
    kinds = [arg for arg in typing.get_args(kind) if arg is not type(None)] or [kind]
    if typing.get_origin(kinds[0]) is tuple:
        return " ".join(names.get(arg, "VALUE") for arg in typing.get_args(kinds[0]))
    return names.get(kinds[0])


def _decls(field: Any, description: Option) -> list[str]:
    if description.flag:
        return [description.flag]
    name = field.name.replace("_", "-")
    return [f"--{name}/--no-{name}"] if isinstance(field.default, bool) else [f"--{name}"]


def job_options(job_type: type) -> list[inspect.Parameter]:
    """One keyword parameter per job field, annotated with its Typer option."""
    hints = typing.get_type_hints(job_type)
    return [
        inspect.Parameter(
            field.name, inspect.Parameter.KEYWORD_ONLY, default=_default(field, description),
            annotation=Annotated[_cli_type(hints[field.name], description),
                                 typer.Option(*_decls(field, description), help=description.help,
                                              metavar=_metavar(hints[field.name], description))],
        )
        for field, description in described(job_type)
    ]


def build_job(job_type: type[J], given: dict[str, Any]) -> J:
    """The job from parsed flags; a flag left out takes the job's default.

    A bad value raises :class:`featx.jobs.fields.JobError`, which the command prints as one ``error:``
    line naming the flag (exit status 1).
    """
    return from_options(job_type, {name: value for name, value in given.items() if value is not None and value != []})


def job_command(
    job_type: type, run: Callable[[dict[str, Any], Path | None], Any], doc: str, config_help: str | None = None
) -> Callable[..., Any]:
    """A Typer command whose flags are ``job_type``'s fields (and ``--config`` when ``config_help``).

    ``run(flags, config)`` receives the parsed flags and the study file (None without ``--config``).
    """
    parameters = job_options(job_type)
    if config_help is not None:
        parameters.append(inspect.Parameter(
            "config", inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[Optional[Path], typer.Option("--config", help=config_help)],  # noqa: UP045
        ))

    def command(**flags: Any) -> Any:
        config = flags.pop("config", None)
        try:
            return run(flags, config)
        except Exception as error:  # a user-caused error is one line, whatever app runs the command
            if not is_expected(error):
                raise
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(EXIT_ERROR) from None

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__doc__ = doc
    return command

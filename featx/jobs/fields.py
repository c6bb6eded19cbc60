"""Job options as data: one table per job type serves the command line, the study YAML and Python.

Each field of a job dataclass is declared with :func:`option`, which records its help text,
its command-line flag and the form its value takes on a command line (a value, a comma list,
a repeatable flag, repeatable ``key=value`` pairs). From that one declaration:

- :func:`from_options` builds the typed job from a mapping of option names (as a study YAML
  or a notebook writes them: ``{"batch-size": 128}`` or ``{"batch_size": 128}``);
- :func:`to_options` writes a job back as such a mapping (what differs from the defaults);
- :mod:`featx.cli.jobs` makes the Typer command whose flags are exactly these options.

Nothing here imports torch, zarr or pandas: the CLI builds its commands from these tables at
start-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

Form = Literal["value", "csv", "repeat", "pairs"]
J = TypeVar("J")


class JobError(ValueError):
    """A job's options are wrong; the message names the option and what it expects."""


@dataclass(frozen=True)
class Option:
    """How one job field appears to users."""

    help: str
    flag: str = ""  # "--name" (default from the field name), or "--on/--off" for a switch
    form: Form = "value"

    def names(self, field_name: str) -> tuple[str, ...]:
        """The option names a user may write for this field (YAML key, flag without dashes, field name)."""
        first = self.flag.split("/")[0].removeprefix("--") if self.flag else field_name.replace("_", "-")
        return tuple(dict.fromkeys((first, field_name, field_name.replace("_", "-"))))


def option(default: Any = dataclasses.MISSING, help: str = "", *, flag: str = "", form: Form = "value") -> Any:
    """A job field with its user-facing description (``default`` may be a list/dict: copied per job)."""
    metadata = {"featx": Option(help=help, flag=flag, form=form)}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def described(job_type: type) -> list[tuple[dataclasses.Field, Option]]:
    """The job's fields that users set, with their descriptions, in declaration order."""
    return [(f, f.metadata["featx"]) for f in dataclasses.fields(job_type) if "featx" in f.metadata]


def primary_name(field: dataclasses.Field, described_as: Option) -> str:
    """The option's name in a study YAML and on the command line (without ``--``)."""
    return described_as.names(field.name)[0]


def _split(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def key_values(value: Any, name: str) -> dict[str, Any]:
    """``{"a": 1}``, or ``["a=1", "b=x"]`` with values read as JSON where they parse as JSON."""
    if isinstance(value, Mapping):
        return {str(key).replace("-", "_"): item for key, item in value.items()}
    parsed: dict[str, Any] = {}
    for item in _split(value) if isinstance(value, str) else list(value):
        if not isinstance(item, str) or "=" not in item:
            raise JobError(f"--{name} {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            parsed[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip()] = raw
    return {key.replace("-", "_"): value for key, value in parsed.items()}


def _scalar(value: Any, kind: Any, name: str) -> Any:
    """``value`` as ``kind`` (int, float, str, bool, Path, or a union of them)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None and len(options) < len(typing.get_args(kind)):
            return None
        for candidate in options:
            try:
                return _scalar(value, candidate, name)
            except JobError:
                continue  # not this type of the union: the next may fit
        raise JobError(f"--{name}: {value!r} is not one of {[getattr(k, '__name__', k) for k in options]}")
    if kind is Any:
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise JobError(f"--{name}: expected true or false, got {value!r}")
    if kind is Path:
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
        raise JobError(f"--{name}: expected a path, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise JobError(f"--{name}: expected a number, got {value!r}")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise JobError(f"--{name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
        if kind is int and isinstance(value, float) and value != number:
            raise JobError(f"--{name}: expected an integer, got {value!r}")
        return number
    if kind is str:
        if isinstance(value, (str, int, float, os.PathLike)) and not isinstance(value, bool):
            return str(value)
        raise JobError(f"--{name}: expected text, got {value!r}")
    raise TypeError(f"no conversion to {kind!r}")  # a job field of a type this module does not handle: a bug


def coerce(value: Any, kind: Any, name: str) -> Any:
    """``value`` (from a command line, a YAML file or Python) as the field type ``kind``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        structured = [a for a in args if typing.get_origin(a) in (tuple, dict)]
        if structured:
            return coerce(value, structured[0], name)
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_scalar(item, args[0], name) for item in _split(value))
        items = _split(value)
        if len(items) != len(args):
            raise JobError(f"--{name}: expected {len(args)} values, got {value!r}")
        return tuple(_scalar(item, arg, name) for item, arg in zip(items, args, strict=True))
    if origin is dict:
        return key_values(value, name)
    return _scalar(value, kind, name)


def from_options(job_type: type[J], options: Mapping[str, Any], where: str = "") -> J:
    """The job described by ``options`` (YAML or CLI names); unknown names and bad values are one sentence.

    ``where`` prefixes messages (e.g. the study file and entry).
    """
    prefix = f"{where}: " if where else ""
    hints = typing.get_type_hints(job_type)
    by_name = {name: f for f, d in described(job_type) for name in d.names(f.name)}
    values: dict[str, Any] = {}
    for name, value in options.items():
        field = by_name.get(str(name))
        if field is None:
            known = sorted({primary_name(f, d) for f, d in described(job_type)})
            raise JobError(f"{prefix}unknown option {name!r}; expected some of {known}")
        if value is None:
            continue
        try:
            values[field.name] = coerce(value, hints[field.name], primary_name(field, field.metadata["featx"]))
        except JobError as error:
            raise JobError(f"{prefix}{error}") from None
    missing = [
        f"--{primary_name(f, d)}" for f, d in described(job_type)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in values
    ]
    if missing:
        raise JobError(f"{prefix}give {', '.join(missing)}")
    try:
        return job_type(**values)
    except JobError as error:
        raise JobError(f"{prefix}{error}") from None


def _plain(value: Any) -> Any:
    """A YAML-friendly form: tuples as lists, paths as text."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def to_options(job: Any, *, all_fields: bool = False) -> dict[str, Any]:
    """The job as ``{option name: value}`` (only what differs from the defaults, unless ``all_fields``)."""
    out: dict[str, Any] = {}
    for field, description in described(type(job)):
        value = getattr(job, field.name)
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        if all_fields or value != default:
            out[primary_name(field, description)] = _plain(value)
    return out


def command_line(verb: str, job: Any) -> str:
    """The `featx VERB ...` command that runs exactly ``job`` (its options that differ from the defaults)."""
    import shlex

    words = ["featx", verb]
    described_as = {primary_name(f, d): d for f, d in described(type(job))}
    for name, value in to_options(job).items():
        form, flag = described_as[name].form, described_as[name].flag
        if isinstance(value, bool):
            switch = flag.split("/") if flag else [f"--{name}", f"--no-{name}"]
            if value or len(switch) > 1:
                words.append(switch[0] if value else switch[1])
        elif form == "pairs":
            words += [arg for key, item in value.items() for arg in (f"--{name}", f"{key}={json.dumps(item)}")]
        elif form == "repeat":
            words += [arg for item in value for arg in (f"--{name}", str(item))]
        elif isinstance(value, list):
            words += [f"--{name}", ",".join(str(item) for item in value)] if form == "csv" else \
                [f"--{name}", *(str(item) for item in value)]
        else:
            words += [f"--{name}", str(value)]
    return shlex.join(words)


def coerce_fields(job: Any) -> None:
    """Give every user-set field of a frozen job its declared type (lists as tuples, text as paths...).

    Called first in a job's ``__post_init__``, so ``ProbeJob(stores=[path], settings=["knn"])`` in a
    notebook is the same job as the one the command line builds.
    """
    hints = typing.get_type_hints(type(job))
    for field, description in described(type(job)):
        value = getattr(job, field.name)
        if value is not None:
            object.__setattr__(job, field.name, coerce(value, hints[field.name], primary_name(field, description)))

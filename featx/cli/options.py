"""Parsing helpers shared by the command modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def parse_key_values(items: list[str] | None, what: str) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; values are JSON when they parse as JSON."""
    parsed: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"{what} {item!r} must look like key=value")
        key, raw = item.split("=", 1)
        try:
            parsed[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key.strip().replace("-", "_")] = raw
    return parsed


def index_from_options(dataset: str, root: Path, option: list[str] | None, name: str | None, modality: str | None):
    """The dataset's sample index from the command line's adapter options; quarantined inputs are listed."""
    from featx.datasets import build_index

    options = parse_key_values(option, "--option")
    if dataset == "csv":
        options.setdefault("name", name)
        options.setdefault("modality", modality or "other")
    index = build_index(dataset, root, **{k: v for k, v in options.items() if v is not None})
    for problem in index.problems:
        typer.secho(f"quarantined: {problem}", fg=typer.colors.YELLOW, err=True)
    return index

"""Parsing helpers shared by the command modules."""

from __future__ import annotations

import json
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

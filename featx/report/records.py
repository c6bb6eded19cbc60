"""Reading result records back from JSON-lines files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

REQUIRED_FIELDS = ("dataset", "backbone", "setting", "split", "metric", "value")


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All records of the given JSONL files as one frame; a malformed line is an error naming it."""
    records = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such results file")
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                raise ValueError(f"{path}:{number}: record lacks fields {missing}")
            records.append(record)
    if not records:
        raise ValueError("no result records found")
    frame = pd.DataFrame.from_records(records)
    for column in ("ci_low", "ci_high", "class", "random_init"):
        if column not in frame:
            frame[column] = None
    return frame

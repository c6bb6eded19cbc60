"""Reading result records back from JSON-lines files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

REQUIRED_FIELDS = ("dataset", "backbone", "setting", "split", "metric", "value")
OPTIONAL_FIELDS = ("ci_low", "ci_high", "class", "random_init", "hyperparameters", "store_key", "weights_hash",
                   "img_size", "seed", "created", "label_names")


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All records of the given JSONL files as one frame; a malformed line or an empty file is an error naming it."""
    records, seen = [], 0
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such results file")
        found = 0
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            found += 1
            if record.get("record_type") == "failure":  # a setting that produced nothing: featx.report.failures
                continue
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                raise ValueError(f"{path}:{number}: record lacks fields {missing}")
            records.append(record)
        if not found:
            raise ValueError(f"{path}: no result records in this file; write some with `featx probe ... --out {path}`")
        seen += found
    if not seen:
        raise ValueError("no results files given")
    frame = pd.DataFrame.from_records(records, columns=None if records else list(REQUIRED_FIELDS))
    for column in OPTIONAL_FIELDS:
        if column not in frame:
            frame[column] = None
    frame["hyperparameters"] = [h if isinstance(h, dict) else {} for h in frame["hyperparameters"]]
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    for column in ("ci_low", "ci_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame

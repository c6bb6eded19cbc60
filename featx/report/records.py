"""Reading result records back from JSON-lines files.

A torn last line (no newline, not JSON: an append cut short by a crash) is left out and
said: :func:`load_results` returns it as a note that the report lists under Problems, and
:func:`load_records` warns. Failure records (a setting that produced no numbers) are passed
over here; :mod:`featx.report.failures` lists those no later result made good. Any other
malformed line is an error naming its file and line.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from featx.evaluation.records import is_failure
from featx.evaluation.results_file import read_lines, torn_note

REQUIRED_FIELDS = ("dataset", "backbone", "setting", "split", "metric", "value")
OPTIONAL_FIELDS = ("ci_low", "ci_high", "class", "random_init", "hyperparameters", "store_key", "weights_hash",
                   "img_size", "seed", "created", "label_names")


class TornLineWarning(UserWarning):
    """A results file's torn last line was left out."""


@dataclass
class Loaded:
    """The records of some results files, and what was left out of them."""

    frame: pd.DataFrame
    notes: list[str]


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All records of the given JSONL files as one frame (see :func:`load_results`); a torn last line warns."""
    loaded = load_results(paths)
    for note in loaded.notes:
        warnings.warn(note, TornLineWarning, stacklevel=2)
    return loaded.frame


def load_results(paths: Iterable[str | Path]) -> Loaded:
    """All records of the given JSONL files; a malformed line or an empty file is an error naming it."""
    records: list[dict] = []
    notes: list[str] = []
    seen = 0
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such results file")
        found = 0
        read = read_lines(path)
        if read.torn:
            notes.append(torn_note(path, read.torn))
        for number, line in read.lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            found += 1
            if is_failure(record):  # a setting that produced nothing: featx.report.failures lists it
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
    return Loaded(frame, notes)

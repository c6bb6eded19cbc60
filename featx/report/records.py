"""Reading result records back from JSON-lines files.

A torn last line (no newline, not JSON: an append cut short by a crash) is left out and
said: :func:`load_results` returns it as a note that the report lists under Problems, and
:func:`load_records` warns. So is a failure record (a setting that produced no numbers)
that no later record of the same store and setting made good. Any other malformed line is
an error naming its file and line.
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


def _made_good(failure: dict, records: list[dict]) -> bool:
    """Whether a later record holds numbers of the store and setting ``failure`` says failed."""
    return any(r.get("store_key") == failure.get("store_key") and r.get("job_setting", r["setting"]) == failure["setting"]
               and str(r.get("created", "")) >= str(failure.get("created", "")) for r in records)


def _failure_note(where: str, failure: dict) -> str:
    return (f"{where}: {failure.get('dataset')} x {failure.get('backbone')} / {failure['setting']} produced no "
            f"results: {failure.get('reason')}")


def load_results(paths: Iterable[str | Path]) -> Loaded:
    """All records of the given JSONL files; a malformed line or an empty file is an error naming it."""
    records = []
    notes = []
    failures = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such results file")
        found, failed = 0, len(failures)
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
            if is_failure(record) and "setting" in record:
                failures.append((f"{path}:{number}", record))
                continue
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                raise ValueError(f"{path}:{number}: record lacks fields {missing}")
            records.append(record)
            found += 1
        if not found:
            only = f", only failure records ({_failure_note(*failures[-1])})" if len(failures) > failed else ""
            raise ValueError(f"{path}: no result records in this file{only}; write some with `featx probe ... --out {path}`")
    if not records:
        raise ValueError("no results files given")
    notes += [_failure_note(where, failure) for where, failure in failures if not _made_good(failure, records)]
    frame = pd.DataFrame.from_records(records)
    for column in OPTIONAL_FIELDS:
        if column not in frame:
            frame[column] = None
    frame["hyperparameters"] = [h if isinstance(h, dict) else {} for h in frame["hyperparameters"]]
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    for column in ("ci_low", "ci_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return Loaded(frame, notes)

"""Settings a run was asked for and did not produce: the failure records of the results files, still open.

The probe runner writes ``{"record_type": "failure", "dataset", "backbone", "setting", "store_key", "reason",
"seed", "command", "created", ...}`` when a setting produces nothing. A failure is *open* unless a result
of the same dataset, backbone, setting and store key was made after it (a re-run that worked).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from featx.evaluation.records import read_jsonl
from featx.report.tables import Cell, Table


def load_failures(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """The failure records of the given results files, in file order (a torn last line is left out)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the torn line is said once, by featx.report.records
        return [record for path in paths for record in read_jsonl(path, failures=True)]


def _where(record: Any, setting: str) -> tuple[str, ...]:
    """What a failure and a result are matched on: the store and the setting asked for (a store that could not be
    opened has no key: its dataset and backbone instead)."""
    key = record.get("store_key")
    return (str(key), setting) if key else (str(record.get("dataset")), str(record.get("backbone")), setting)


def open_failures(failures: list[dict[str, Any]], records: pd.DataFrame) -> list[dict[str, Any]]:
    """The failures no later result made good, newest first; each once per (store, setting)."""
    produced: dict[tuple[str, ...], str] = {}
    for _, row in records.iterrows():
        asked = row.get("job_setting")
        setting = str(asked) if isinstance(asked, str) else str(row["setting"]).split("-", 1)[0]  # fewshot-linear: fewshot
        key = _where(row, setting)
        produced[key] = max(produced.get(key, ""), str(row.get("created") or ""))
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for failure in failures:
        key = _where(failure, str(failure.get("setting")))
        if str(failure.get("created") or "") >= str(latest.get(key, {}).get("created") or ""):
            latest[key] = failure
    still = [f for key, f in latest.items() if produced.get(key, "") < str(f.get("created") or "")]
    return sorted(still, key=lambda f: str(f.get("created") or ""), reverse=True)


def failures_table(failures: list[dict[str, Any]]) -> Table:
    """Not run / failed: one row per setting asked for that produced nothing, with the reason."""
    rows = [[Cell(str(f.get(k) if f.get(k) is not None else "–")) for k in ("setting", "dataset", "backbone")]
            + [Cell(str(f.get("reason") or "no reason recorded")), Cell(str(f.get("seed", "–"))),
               Cell(str(f.get("created") or "–"))] for f in failures]
    table = Table("Not run / failed: settings asked for that produced no numbers, and why",
                  ["setting", "dataset", "backbone", "reason", "seed", "when"], rows)
    if not rows:
        table.notes.append("None: every setting asked for in these results files produced its numbers.")
    return table

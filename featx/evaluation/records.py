"""Result records: one JSON object per number, appended to a JSON-lines file.

Every record carries what it measures (dataset, backbone, setting, split, metric,
class, value, 95% patient-bootstrap interval) and where it comes from (store key and
path, weights hash, random_init, hyper-parameters of the selected configuration,
seed, row counts, featx version, UTC creation time). NaN becomes ``null``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from featx.evaluation.features import ProbeError
from featx.evaluation.metrics import Scored

REQUIRED = (
    "dataset",
    "backbone",
    "setting",
    "split",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "store_key",
    "store_path",
    "weights_hash",
    "random_init",
    "hyperparameters",
    "seed",
    "n_train",
    "n_test",
    "featx_version",
    "created",
)


class LabelMismatchError(ProbeError):
    """Results being merged were computed with other label names for the same dataset."""


def featx_version() -> str:
    """The featx version that produced a record."""
    from featx import __version__

    return __version__


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


def scored_records(scored: Scored, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Macro AUROC, per-class AUROC and (where defined) accuracy, each as one record."""
    out = [
        {**base, "metric": "auroc_macro", "value": scored.auroc_macro, "ci_low": scored.auroc_macro_ci[0], "ci_high": scored.auroc_macro_ci[1]}
    ]
    for name, value, ci in zip(scored.label_names, scored.auroc, scored.auroc_ci):
        out.append({**base, "metric": "auroc", "class": name, "value": float(value), "ci_low": float(ci[0]), "ci_high": float(ci[1])})
    if scored.accuracy is not None:
        out.append({**base, "metric": "accuracy", "value": scored.accuracy, "ci_low": scored.accuracy_ci[0], "ci_high": scored.accuracy_ci[1]})
    return out


def make_base(
    *,
    provenance: dict[str, Any],
    setting: str,
    split: str,
    hyperparameters: dict[str, Any],
    seed: int,
    n_train: int,
    n_test: int,
    label_names: list[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fields shared by every record of one scoring."""
    return {
        "dataset": provenance.get("dataset"),
        "backbone": provenance.get("backbone"),
        "setting": setting,
        "split": split,
        "store_key": provenance.get("store_key"),
        "store_path": provenance.get("store_path"),
        "weights_hash": provenance.get("weights_hash"),
        "random_init": bool(provenance.get("random_init")),
        "img_size": provenance.get("img_size"),
        "hyperparameters": dict(hyperparameters),
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "label_names": list(label_names),
        "ci": "95% percentile bootstrap over patients",
        "featx_version": featx_version(),
        "created": utc_now(),
        **(extra or {}),
    }


def finalise(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clean NaN/numpy values and check the required fields are present."""
    out = []
    for record in records:
        missing = [key for key in REQUIRED if key not in record]
        if missing:
            raise ProbeError(f"result record lacks {missing}")
        out.append(_clean(record))
    return out


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    out = []
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ProbeError(f"{path}:{number}: not a JSON line ({error})") from error
    return out


def check_label_names(existing: list[dict[str, Any]], dataset: str, label_names: list[str], path: str | Path = "") -> None:
    """Refuse to merge results of ``dataset`` computed with other label names."""
    for record in existing:
        if record.get("dataset") == dataset and "label_names" in record and list(record["label_names"]) != list(label_names):
            raise LabelMismatchError(
                f"{dataset}: the store's label names {list(label_names)} differ from those of the results "
                f"already in {path or 'the results file'} ({record['label_names']}); write to another "
                "results file or re-run the earlier results"
            )


def append_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Append records (one JSON object per line); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps(record, sort_keys=False, allow_nan=False) for record in finalise(records)]
    with path.open("a") as handle:
        for row in rows:
            handle.write(row + "\n")
    return len(rows)

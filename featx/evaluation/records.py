"""Result records: one JSON object per number, appended to a JSON-lines file.

Every record carries what it measures (dataset, backbone, setting, split, metric,
class, value, 95% bootstrap interval and what it rests on) and where it comes from
(store key and path, weights hash, random_init, hyper-parameters of the selected
configuration, seed, row counts, featx version, UTC creation time); test records also
carry what the test-use ledger saw (``test_reuse``, ``test_use``). NaN becomes ``null``.
:func:`schema_problems` checks a probe record against the one schema every setting shares.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from featx.evaluation.features import ProbeError
from featx.evaluation.metrics import Scored
from featx.evaluation.results_file import append_records, read_records
from featx.evaluation.segmentation import SegScored

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
    "store_version",
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

# What every probe record carries beyond REQUIRED (fine-tuning records are checked by REQUIRED only), and what
# every test record adds: one schema for every setting, classification and segmentation alike.
PROBE_REQUIRED = (*REQUIRED, "label_names", "level", "method", "store", "small_set_warnings")
TEST_REQUIRED = ("test_reuse", "test_use")


def schema_problems(record: dict[str, Any]) -> list[str]:
    """What a probe record lacks or holds wrongly against the one record schema (empty: it conforms)."""
    problems = [f"lacks {key!r}" for key in PROBE_REQUIRED if key not in record]
    if record.get("split") == "test":
        problems += [f"lacks {key!r}" for key in TEST_REQUIRED if key not in record]
        use = record.get("test_use")
        if "test_use" in record and not (isinstance(use, dict) and {"where", "what", "fingerprint"} <= set(use)):
            problems.append("test_use lacks where / what / fingerprint")
    for key in ("n_train", "n_test"):
        if key in record and not (isinstance(record[key], int) and record[key] > 0):
            problems.append(f"{key} is {record[key]!r}, not a positive count")
    if "small_set_warnings" in record and not isinstance(record["small_set_warnings"], list):
        problems.append("small_set_warnings is not a list")
    return problems


# A setting that was asked for and produced nothing is written as a failure record: the report lists it
# and a study run retries it. Readers of numbers (read_jsonl) pass over these.
FAILURE = "failure"
FAILURE_REQUIRED = ("record_type", "setting", "reason", "featx_version", "created")


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
    """Macro AUROC, per-class AUROC and (where defined) accuracy, each as one record.

    Every record says which interval it carries (``ci``) and how many resamples it rests
    on (``ci_resamples``, ``ci_resamples_lost``, ``ci_low_support``); an aggregate over
    seeds also carries the spread over seeds (``seed_mean``, ``seed_std``, ``seed_min``,
    ``seed_max``, ``per_seed``).
    """
    spread = scored.over_seeds or {}

    def one(metric: str, key: str, value: Any, ci: Any, used: int | None, **fields: Any) -> dict[str, Any]:
        record = {**base, "metric": metric, **fields, "value": value, "ci_low": ci[0], "ci_high": ci[1], "ci": scored.ci_method}
        record["n_patients"] = scored.n_patients  # test (or val) patients behind the number
        if used is not None:
            record.update(scored.support(used))
        if key in spread:
            s = spread[key]
            record.update({"seed_mean": s["mean"], "seed_std": s["std"], "seed_min": s["min"], "seed_max": s["max"], "per_seed": s["values"]})
        return record

    per_class_used = scored.auroc_ci_resamples if scored.auroc_ci_resamples is not None else [None] * len(scored.label_names)
    positives = scored.positive_patients or [None] * len(scored.label_names)
    out = [one("auroc_macro", "auroc_macro", scored.auroc_macro, scored.auroc_macro_ci, scored.auroc_macro_ci_resamples)]
    for name, value, ci, used, pos in zip(scored.label_names, scored.auroc, scored.auroc_ci, per_class_used, positives):
        out.append(one("auroc", f"auroc/{name}", float(value), (float(ci[0]), float(ci[1])), None if used is None else int(used),
                       **{"class": name, "positive_patients": pos}))
    if scored.accuracy is not None:
        out.append(one("accuracy", "accuracy", scored.accuracy, scored.accuracy_ci, scored.n_boot))
    return out


def _aggregation(scored: SegScored, metric: str) -> str:
    return scored.pooled if metric.endswith(scored.pooled) else scored.aggregation


def seg_scored_records(scored: SegScored, base: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per macro number and per (class, Dice / Jaccard), both aggregations.

    Metrics: ``dice_jaccard_mean`` (the headline), ``dice``, ``jaccard`` per unit
    (``aggregation: per_image | per_volume``) and the same with ``_all_pixels`` /
    ``_all_voxels`` appended, pooled over every pixel or voxel first
    (``aggregation: all_pixels | all_voxels``); macro over the foreground classes, and one
    record per class (``class``) for Dice and Jaccard.
    """
    out = []
    for metric, value in scored.values.items():
        low, high = scored.intervals[metric]
        out.append({**base, "metric": metric, "aggregation": _aggregation(scored, metric), "value": value, "ci_low": low,
                    "ci_high": high, "n_patients": scored.n_patients})
    for metric, values in scored.per_class.items():
        for name, value, (low, high) in zip(scored.class_names, values, scored.per_class_intervals[metric]):
            out.append({**base, "metric": metric, "class": name, "aggregation": _aggregation(scored, metric),
                        "value": float(value), "ci_low": float(low), "ci_high": float(high)})
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
        "store_version": provenance.get("store_version"),
        "store_path": provenance.get("store_path"),
        "weights_hash": provenance.get("weights_hash"),
        "random_init": bool(provenance.get("random_init")),
        "img_size": provenance.get("img_size"),
        "hyperparameters": dict(hyperparameters),
        "seed": seed,
        "n_train": n_train,
        "n_test": n_test,
        "label_names": list(label_names),
        "featx_version": featx_version(),
        "created": utc_now(),
        **(extra or {}),
    }


def failure_record(
    *, setting: str, reason: str, provenance: dict[str, Any], seed: int, command: str | None
) -> dict[str, Any]:
    """The record of a setting that was asked for and produced no numbers, and why."""
    return {
        "record_type": FAILURE,
        "dataset": provenance.get("dataset"),
        "backbone": provenance.get("backbone"),
        "setting": setting,
        "store_key": provenance.get("store_key"),
        "store_version": provenance.get("store_version"),
        "store_path": provenance.get("store_path"),
        "reason": reason,
        "seed": seed,
        "command": command,
        "featx_version": featx_version(),
        "created": utc_now(),
    }


def is_failure(record: dict[str, Any]) -> bool:
    """Whether ``record`` says a setting failed (it holds a reason, not a number)."""
    return record.get("record_type") == FAILURE


def finalise(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Clean NaN/numpy values and check the required fields are present."""
    out = []
    for record in records:
        missing = [key for key in (FAILURE_REQUIRED if is_failure(record) else REQUIRED) if key not in record]
        if missing:
            raise ProbeError(f"result record lacks {missing}")
        out.append(_clean(record))
    return out


def read_jsonl(path: str | Path, *, failures: bool = False) -> list[dict[str, Any]]:
    """The result records of a results file (``failures``: the failure records instead); [] if it is absent.

    Read by :func:`featx.evaluation.results_file.read_records`: a torn last line is left out with a warning.
    """
    return [record for record in read_records(path) if is_failure(record) == failures]


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
    """Clean and check ``records``, then append them durably (see :mod:`featx.evaluation.results_file`)."""
    return append_records(path, finalise(records))

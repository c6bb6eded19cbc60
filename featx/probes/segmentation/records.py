"""Result records of the segmentation decoders, built with the shared record helpers.

Metrics: ``dice_jaccard_mean`` (the headline), ``dice``, ``jaccard`` per unit
(``aggregation: per_image | per_volume``) and the same with ``_all_pixels`` /
``_all_voxels`` appended, pooled over every pixel or voxel first
(``aggregation: all_pixels | all_voxels``); macro over the foreground classes, and one
record per class (``class``) for Dice and Jaccard.
"""

from __future__ import annotations

from typing import Any

from featx.evaluation.records import make_base
from featx.probes.segmentation.metrics import SegScored


def _aggregation(scored: SegScored, metric: str) -> str:
    return scored.pooled if metric.endswith(scored.pooled) else scored.aggregation


def seg_scored_records(scored: SegScored, base: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per macro number and per (class, Dice / Jaccard), both aggregations."""
    out = []
    for metric, value in scored.values.items():
        low, high = scored.intervals[metric]
        out.append({**base, "metric": metric, "aggregation": _aggregation(scored, metric), "value": value, "ci_low": low, "ci_high": high})
    for metric, values in scored.per_class.items():
        for name, value, (low, high) in zip(scored.class_names, values, scored.per_class_intervals[metric]):
            out.append({**base, "metric": metric, "class": name, "aggregation": _aggregation(scored, metric),
                        "value": float(value), "ci_low": float(low), "ci_high": float(high)})
    return out


def seg_outcome_records(outcome, data, seed: int, record_val: bool = True) -> list[dict[str, Any]]:
    """Test records of one outcome, and the validation headline of every lr candidate."""
    extra = {"method": outcome.hyperparameters.get("decoder"), "level": data.level, "n_test_units": outcome.test.n_units,
             "n_classes": data.n_classes, **outcome.extra}
    if outcome.test.empty_classes:
        extra["empty_classes"] = list(outcome.test.empty_classes)
    base = make_base(
        provenance=data.provenance, setting=outcome.setting, split="test", hyperparameters=outcome.hyperparameters,
        seed=seed, n_train=outcome.n_train, n_test=outcome.n_test, label_names=data.class_names, extra=extra,
    )
    records = seg_scored_records(outcome.test, base)
    if record_val:
        chosen = outcome.hyperparameters.get("lr")
        for hyper, scored in outcome.val:
            val_base = {**base, "split": "val", "hyperparameters": hyper, "n_test": scored.n_rows, "selected": hyper["lr"] == chosen}
            records.extend(r for r in seg_scored_records(scored, val_base) if r["metric"] in ("dice_jaccard_mean", "dice") and "class" not in r)
    return records

"""Result records of the segmentation decoders, built with the shared record helpers
(:func:`featx.evaluation.records.seg_scored_records` says which metrics)."""

from __future__ import annotations

from typing import Any

from featx.evaluation.records import make_base, seg_scored_records


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

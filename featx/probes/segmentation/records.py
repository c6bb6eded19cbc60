"""Result records of the segmentation decoders, built with the shared record helpers
(:func:`featx.evaluation.records.seg_scored_records` says which metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from featx.evaluation.analyses import segmentation_extras
from featx.evaluation.records import make_base, seg_scored_records
from featx.evaluation.segmentation import confusion_counts


def seg_outcome_records(outcome, data, seed: int, record_val: bool = True) -> list[dict[str, Any]]:
    """Test records of one outcome, and the validation headline of every lr candidate.

    As in classification, ``n_train`` counts the rows the scored model was trained on and
    ``n_test`` / ``n_test_units`` the rows / units scored in the record's own split (the
    validation split in a validation record).
    """
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
            val_base = {**base, "split": "val", "hyperparameters": hyper, "n_train": int((data.split == "train").sum()),
                        "n_test": scored.n_rows, "n_test_units": scored.n_units, "selected": hyper["lr"] == chosen}
            val_base.pop("test_reuse", None)
            val_base.pop("test_use", None)
            val_base.pop("n_train_units", None)
            records.extend(r for r in seg_scored_records(scored, val_base) if r["metric"] in ("dice_jaccard_mean", "dice") and "class" not in r)
    return records


def with_kept_predictions(out, records: list[dict[str, Any]], outcome, data) -> list[dict[str, Any]]:
    """``records`` of one outcome with its test units' TP/FP/FN counts kept beside ``out`` (for paired comparisons).

    The true test masks are read again here, after the one test scoring, to count against the predicted ones.
    """
    if out is None or outcome.predictions is None or outcome.test_positions is None:
        return records
    positions = np.asarray(outcome.test_positions)
    counts = confusion_counts(outcome.predictions, data.read_masks(positions, sealed_ok=True), data.n_classes)
    return segmentation_extras(out, records, counts, data.unit_ids[positions], data.patients[positions], list(data.class_names))

"""One record schema for every setting, and segmentation test scorings in the test-use ledger across runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featx.evaluation.compare import compare_predictions
from featx.evaluation.ledger import LEDGER
from featx.evaluation.predictions import load
from featx.evaluation.records import schema_problems
from featx.probes.job import ProbeJob
from featx.probes.runner import run_probes

SEG = {"seg_epochs": 1, "seg_batch_size": 8, "bootstrap": 20, "val_bootstrap": 10}


def _records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def every_setting(shapes_2d, tmp_path_factory):
    """Records of every classification and segmentation setting, written by run_probes."""
    from tests.probes.conftest import make_store

    root = tmp_path_factory.mktemp("schema")
    out = root / "r.jsonl"
    store = make_store(root / "cache", task="multilabel", n_patients=80)
    assert run_probes(ProbeJob(stores=[store], settings=["knn", "mlknn", "linear", "fewshot"], out=out, bootstrap=20,
                               batch_size=32, shots=(2,), fewshot_seeds=2)).ok
    assert run_probes(ProbeJob(stores=[shapes_2d.path], settings=["seg_linear", "fewshot"], out=out, seg_lrs=(0.01, 0.1),
                               shots=(2,), fewshot_seeds=2, **SEG)).ok
    return out, _records(out)


def test_every_setting_writes_the_one_record_schema(every_setting):
    _, records = every_setting
    settings = {r["setting"] for r in records}
    assert settings >= {"knn", "mlknn", "linear", "fewshot-knn", "fewshot-linear", "seg_linear", "fewshot-seg_linear"}
    for record in records:
        assert schema_problems(record) == [], (record["setting"], record["split"], record["metric"])


def test_segmentation_validation_records_count_what_each_candidate_trained_and_was_scored_on(every_setting, shapes_2d):
    _, records = every_setting
    from featx.probes.segmentation import open_segmentation

    data = open_segmentation(shapes_2d)
    val = [r for r in records if r["setting"] == "seg_linear" and r["split"] == "val"]
    test = next(r for r in records if r["setting"] == "seg_linear" and r["split"] == "test" and r["metric"] == "dice_jaccard_mean")
    assert val and all(r["n_train"] == int((data.split == "train").sum()) for r in val)
    assert all(r["n_test"] == int((data.split == "val").sum()) == r["n_test_units"] for r in val)
    assert test["n_train"] == int(np.isin(data.split, ["train", "val"]).sum()) and test["n_test_units"] == int((data.split == "test").sum())
    assert "patients" in " ".join(test["small_set_warnings"])  # a handful of test patients warns, as in classification
    assert test["store"]["patch_tokens"] is True


def test_segmentation_keeps_per_unit_counts_for_pairing(every_setting):
    out, records = every_setting
    head = next(r for r in records if r["setting"] == "seg_linear" and r["split"] == "test" and r["metric"] == "dice_jaccard_mean"
                and r["aggregation"] == "per_image")
    kept = load(head, out)
    tp, fp, fn = (kept.counts[..., i].astype(float) for i in range(3))
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = 2 * tp / (2 * tp + fp + fn)
    assert kept.kind == "unit_counts" and len(kept.ids) == head["n_test_units"]
    assert np.nanmean(np.nanmean(dice, 0)) == pytest.approx(next(
        r["value"] for r in records if r["setting"] == "seg_linear" and r["split"] == "test" and r["metric"] == "dice" and "class" not in r))


def test_segmentation_test_reuse_is_caught_across_runs(shapes_2d, tmp_path):
    out = tmp_path / "r.jsonl"
    said: list[str] = []
    for lrs in ((0.01,), (0.1,), (0.001,)):
        LEDGER.clear()  # a new process: only the results file remembers
        assert run_probes(ProbeJob(stores=[shapes_2d.path], settings=["seg_linear"], out=out, seg_lrs=lrs, **SEG), echo=said.append).ok
    heads = [r for r in _records(out) if r["split"] == "test" and r["metric"] == "dice_jaccard_mean" and r["aggregation"] == "per_image"]
    assert [r["test_reuse"] for r in heads] == [0, 1, 2]
    assert sum("WARNING" in line and "re-use" in line.lower() for line in said) == 2
    first, second = (load(r, out) for r in heads[:2])  # two runs' scorings of the same test images pair
    head, per_class, units = compare_predictions(first, second, n_boot=50)
    assert head.a == pytest.approx(heads[0]["value"]) and head.b == pytest.approx(heads[1]["value"])
    assert per_class == [] and units.n_patients == heads[0]["n_test_units"]

import json

import numpy as np
import pytest

from featx.evaluation.metrics import score, score_over_seeds
from featx.evaluation.records import (
    REQUIRED,
    LabelMismatchError,
    append_jsonl,
    check_label_names,
    make_base,
    read_jsonl,
    scored_records,
)


def _records():
    y = np.eye(2)[[0, 1, 0, 1, 1, 0]]
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.3, 0.7], [0.7, 0.3]])
    scored = score(y, s, np.arange(6), task="binary", label_names=["neg", "pos"], n_boot=20)
    base = make_base(
        provenance={"dataset": "d", "backbone": "b", "store_key": "k", "store_path": "/s", "weights_hash": "h", "random_init": True},
        setting="knn",
        split="test",
        hyperparameters={"k": 10},
        seed=0,
        n_train=10,
        n_test=6,
        label_names=["neg", "pos"],
    )
    return scored_records(scored, base)


def test_one_record_per_number_with_provenance(tmp_path):
    records = _records()
    assert [r["metric"] for r in records] == ["auroc_macro", "auroc", "auroc", "accuracy"]
    assert [r.get("class") for r in records] == [None, "neg", "pos", None]
    path = tmp_path / "r.jsonl"
    assert append_jsonl(path, records) == 4
    append_jsonl(path, records)
    back = read_jsonl(path)
    assert len(back) == 8
    for r in back:
        assert all(key in r for key in REQUIRED)
        assert r["random_init"] is True and r["created"].endswith("+00:00")


def test_nan_becomes_null(tmp_path):
    records = _records()
    records[1]["value"] = float("nan")
    path = tmp_path / "r.jsonl"
    append_jsonl(path, records)
    assert json.loads(path.read_text().splitlines()[1])["value"] is None


def test_missing_field_refused(tmp_path):
    bad = dict(_records()[0])
    del bad["store_key"]
    with pytest.raises(ValueError, match="store_key"):
        append_jsonl(tmp_path / "r.jsonl", [bad])


def test_label_name_mismatch_is_clear():
    existing = _records()
    check_label_names(existing, "d", ["neg", "pos"])
    check_label_names(existing, "other", ["x"])
    with pytest.raises(LabelMismatchError, match="differ"):
        check_label_names(existing, "d", ["pos", "neg"])


def test_records_say_which_interval_and_what_it_rests_on():
    records = _records()
    for r in records:
        assert r["ci"] == "95% percentile bootstrap over test patients"
        assert r["ci_resamples"] + r["ci_resamples_lost"] == 20 and isinstance(r["ci_low_support"], bool)
        assert "seed_std" not in r
    rng = np.random.default_rng(0)
    y = np.eye(2)[rng.integers(0, 2, 30)]
    sets = [y + rng.normal(0, 1, y.shape) for _ in range(3)]
    scored = score_over_seeds(y, sets, np.arange(30), task="binary", label_names=["neg", "pos"], n_boot=50)
    base = make_base(
        provenance={"dataset": "d", "store_key": "k"}, setting="fewshot-knn", split="test", hyperparameters={}, seed=0,
        n_train=4, n_test=30, label_names=["neg", "pos"],
    )
    over = scored_records(scored, base)
    assert [r["metric"] for r in over] == ["auroc_macro", "auroc", "auroc", "accuracy"]
    for r in over:
        assert r["ci"] == "95% percentile bootstrap over seeds and test patients"
        assert len(r["per_seed"]) == 3 and r["seed_min"] <= r["seed_mean"] <= r["seed_max"] and r["seed_std"] > 0
        assert r["seed_mean"] == pytest.approx(r["value"])


def test_segmentation_records_say_their_aggregation_per_macro_number_and_class():
    from featx.evaluation.records import seg_scored_records
    from featx.evaluation.segmentation import score_segmentation

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (6, 8, 8)).astype(np.uint8)
    pred = np.where(rng.random((6, 8, 8)) < 0.8, truth, 0).astype(np.uint8)
    scored = score_segmentation(pred, truth, np.repeat(["v0", "v1", "v2"], 2), np.repeat(["p0", "p1", "p2"], 2),
                                class_names=["background", "a", "b"], unit="volume", n_boot=20)
    records = seg_scored_records(scored, {"setting": "seg_unet"})
    macro = {r["metric"]: r["aggregation"] for r in records if "class" not in r}
    assert macro == {"dice": "per_volume", "jaccard": "per_volume", "dice_jaccard_mean": "per_volume",
                     "dice_all_voxels": "all_voxels", "jaccard_all_voxels": "all_voxels",
                     "dice_jaccard_mean_all_voxels": "all_voxels"}
    per_class = [(r["metric"], r["class"]) for r in records if "class" in r]
    assert per_class == [(m, c) for m in ("dice", "jaccard", "dice_all_voxels", "jaccard_all_voxels") for c in ("a", "b")]
    assert all(r["setting"] == "seg_unet" and r["ci_low"] <= r["value"] <= r["ci_high"] for r in records)

import numpy as np
import pytest

from featx.evaluation.features import ProbeData
from featx.probes.fewshot import ShotsError, eligible_patients, evaluate_fewshot, sample_rows

from .conftest import planted_data


def _nih_like():
    """Patient a: both images have c0 -> eligible for c0. Patient b: only one image has c0 -> not."""
    labels = np.array([[1, 0], [1, 1], [1, 0], [0, 0], [0, 1], [0, 1], [1, 1]], dtype=np.float32)
    patients = np.array(["a", "a", "b", "b", "c", "c", "t"])
    split = np.array(["train"] * 6 + ["test"])
    return ProbeData.from_arrays(np.eye(7, 3, dtype=np.float32), labels, patients, split, task="multilabel", label_names=["c0", "c1"])


def test_nih_rule_patient_counts_only_if_every_image_carries_the_class():
    eligible = eligible_patients(_nih_like())
    assert list(eligible["c0"]) == ["a"]
    assert list(eligible["c1"]) == ["c"]  # a has c1 on one image only
    rows = sample_rows(_nih_like(), 1, seed=0)
    assert set(_nih_like().patients[rows]) == {"a", "c"} and len(rows) == 4  # all images of chosen patients


def test_more_shots_than_patients_is_a_clear_error():
    with pytest.raises(ShotsError, match=r"2 patients per class .* c0: 1"):
        sample_rows(_nih_like(), 2, seed=0)


def test_sampling_draws_n_per_class_from_train_only_and_varies_with_seed():
    data = planted_data(task="multiclass", n_patients=200)
    draws = [sample_rows(data, 4, seed=s) for s in range(3)]
    for rows in draws:
        assert (data.split[rows] == "train").all()
        pats = np.unique(data.patients[rows])
        assert len(pats) == 12
        counts = np.bincount(np.argmax(data.labels[rows], 1))
        assert (counts == 4 * 2).all()  # 2 images per patient
    assert not np.array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(sample_rows(data, 4, seed=1), draws[1])  # reproducible


def test_evaluate_fewshot_seeds_spread_and_skip_impossible():
    data = planted_data(task="multiclass", n_patients=150, signal=3.0, dim=16)
    problems = []
    out = evaluate_fewshot(data, shots=(1, 4, 500, "all"), n_seeds=3, n_boot=20, problems=problems)
    assert any("n=500" in p for p in problems)
    aggregates = [o for o in out if o.extra.get("aggregate")]
    per_seed = [o for o in out if not o.extra.get("aggregate")]
    assert {(o.setting, o.hyperparameters["shots"]) for o in aggregates} == {
        (s, n) for s in ("fewshot-knn", "fewshot-linear") for n in (1, 4, "all")
    }
    assert len(per_seed) == 2 * (3 + 3 + 1)
    four = [o for o in aggregates if o.hyperparameters["shots"] == 4 and o.setting == "fewshot-linear"][0]
    assert four.extra["n_seeds"] == 3 and len(four.extra["macro_per_seed"]) == 3
    assert four.test.auroc_macro == pytest.approx(np.mean(four.extra["macro_per_seed"]))
    alls = [o for o in aggregates if o.hyperparameters["shots"] == "all"]
    assert all(o.test.auroc_macro > 0.95 for o in alls)
    # never trained on validation rows
    assert all(o.n_train <= int((data.split == "train").sum()) for o in per_seed)


def test_fewshot_aggregate_interval_is_for_the_mean_over_seeds():
    data = planted_data(task="multiclass", n_patients=150, signal=0.4, dim=32)
    both = evaluate_fewshot(data, shots=(2,), n_seeds=4, n_boot=200)
    assert all(o.hyperparameters["selected_on"] == "fixed (few-shot: no validation)" for o in both)
    out = [o for o in both if o.setting == "fewshot-linear"]
    per_seed = [o for o in out if not o.extra.get("aggregate")]
    (agg,) = [o for o in out if o.extra.get("aggregate")]
    means = np.mean([o.test.auroc_macro for o in per_seed])
    assert agg.test.auroc_macro == pytest.approx(means)
    assert agg.test.auroc_macro_ci[0] <= means <= agg.test.auroc_macro_ci[1]
    assert agg.test.ci_method == "95% percentile bootstrap over seeds and test patients"
    spread = agg.test.over_seeds["auroc_macro"]
    assert spread["values"] == pytest.approx([o.test.auroc_macro for o in per_seed])
    assert spread["min"] <= means <= spread["max"] and spread["std"] > 0
    for c, name in enumerate(data.label_names):  # per-class numbers: mean over seeds, same interval kind
        assert agg.test.auroc[c] == pytest.approx(np.mean([o.test.auroc[c] for o in per_seed]))
        assert agg.test.auroc_ci[c, 0] <= agg.test.auroc[c] <= agg.test.auroc_ci[c, 1]
        assert agg.test.over_seeds[f"auroc/{name}"]["values"] == pytest.approx([o.test.auroc[c] for o in per_seed])
    assert agg.test.accuracy == pytest.approx(np.mean([o.test.accuracy for o in per_seed]))


def test_fewshot_linear_probe_is_named_and_the_papers_sgd_layer_is_an_option():
    data = planted_data(task="multiclass", n_patients=150, signal=3.0, dim=16)
    logistic = evaluate_fewshot(data, shots=(4,), n_seeds=2, probes=("linear",), n_boot=0)
    sgd = evaluate_fewshot(data, shots=(4,), n_seeds=2, probes=("linear",), linear="sgd", lr=0.05, epochs=30, batch_size=8, n_boot=0, allow_test_reuse=True)
    for outcome in logistic:
        assert outcome.hyperparameters["probe"] == "logistic_regression" and outcome.hyperparameters["backend"] == "sklearn"
    for outcome in sgd:
        h = outcome.hyperparameters
        assert h["probe"] == "sgd_linear_layer" and h["backend"] == "torch" and h["optimizer"] == "sgd" and h["lr"] == 0.05
    assert [o for o in sgd if o.extra.get("aggregate")][0].test.auroc_macro > 0.8
    with pytest.raises(Exception, match="few-shot linear probe"):
        evaluate_fewshot(data, shots=(4,), probes=("linear",), linear="svm")

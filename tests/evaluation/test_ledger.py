import pytest

from featx.evaluation.ledger import TestLedger, TestReuseWarning, fingerprint_of, what_of, where_of


def test_records_of_earlier_runs_enter_the_ledger_including_pre_ledger_ones():
    hyper = {"k": 10, "method": "weighted_knn"}
    legacy = {"split": "test", "metric": "auroc_macro", "store_key": "abc", "setting": "knn", "hyperparameters": hyper, "seed": 0}
    ignored = [
        {**legacy, "split": "val"},
        {**legacy, "metric": "auroc", "class": "c0"},
        {**legacy, "aggregate": "mean_over_seeds"},
    ]
    ledger = TestLedger()
    assert ledger.load_records([legacy, *ignored]) == 1
    where, what = where_of({"store_key": "abc"}, [], [], []), what_of("knn", hyper)
    assert ledger.seen(where, what) == [fingerprint_of(hyper, 0)]
    assert ledger.record(where, what, fingerprint_of(hyper, 0)).reuse == 0  # the same run again
    with pytest.warns(TestReuseWarning, match="store:abc / knn"):
        use = ledger.record(where, what, fingerprint_of({**hyper, "k": 20}, 0))
    assert use.reuse == 1 and use.as_record()["test_use"]["where"] == "store:abc"


def test_scope_separates_fewshot_scorings_and_version_separates_stores():
    a = what_of("fewshot-knn", {"shots": 2, "fewshot_seed": 0, "k": 3})
    b = what_of("fewshot-knn", {"shots": 2, "fewshot_seed": 1, "k": 3})
    assert a != b and what_of("knn", {"k": 10}) == "knn"
    assert where_of({"store_key": "abc", "store_version": 2}, [], [], []) == "store:abc@2"
    assert fingerprint_of({"k": 10, "n_patients": 4}, 0) == fingerprint_of({"k": 10, "n_patients": 6}, 0)
    assert fingerprint_of({"k": 10}, 0) != fingerprint_of({"k": 10}, 1)

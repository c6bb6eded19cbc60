"""Small validation / test sets are called out: few patients, or a class with few positive patients."""

from featx.probes.smallsets import small_set_warnings
from tests.probes.conftest import planted_data


def test_a_small_test_set_is_warned_about_and_a_large_one_is_not():
    small = small_set_warnings(planted_data(n_patients=40, task="binary"))
    assert any(w.startswith("test has only 8 patients") for w in small)
    assert any(w.startswith("val has only 8 patients") for w in small)
    assert any("class 'c1' has" in w and "positive patients" in w for w in small)
    assert not any("'c0'" in w for w in small)  # a binary task's negative column is not a class to count
    assert small_set_warnings(planted_data(n_patients=400, task="binary")) == []


def test_a_rare_class_is_named_even_when_there_are_enough_patients():
    data = planted_data(n_patients=400, task="multilabel", n_classes=3)
    test = data.split == "test"
    data.labels[test, 2] = 0.0
    data.labels[test & (data.patients == data.patients[test][0]), 2] = 1.0  # one positive patient left
    assert small_set_warnings(data) == ["test: class 'c2' has 1 positive patients (fewer than 10)"]

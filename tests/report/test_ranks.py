import pandas as pd
import pytest

from featx.report import collect, load_records
from featx.report.ranks import cross_task_ranks, mark_best
from tests.report.conftest import record, seg, write


def test_ranks_equal_a_hand_computed_example(tmp_path):
    values = {"nih": {"A": 0.8, "B": 0.7, "C": 0.7}, "chexpert": {"A": 0.6, "B": 0.9, "C": 0.7}}
    rows = [record(dataset=d, backbone=m, value=v, store_key=f"{d}{m}") for d, by in values.items() for m, v in by.items()]
    rows += [record(dataset=d, backbone=m, setting="knn", value=1 - v, store_key=f"{d}{m}") for d, by in values.items()
             for m, v in by.items()]  # another setting: not the one ranked
    rows += [seg("spleen", m, "unet", v) for m, v in {"A": 0.5, "B": 0.6, "C": 0.7}.items()]
    rows += [seg("spleen", m, "linear", v) for m, v in {"A": 0.9, "B": 0.1, "C": 0.2}.items()]
    ranks = cross_task_ranks(collect(load_records([write(tmp_path / "r.jsonl", rows)])).cells)
    assert ranks.sections == {"classification": "linear", "segmentation": "seg_unet"}
    # nih: A 1, B and C share 2 and 3 -> 2.5; chexpert: B 1, C 2, A 3; spleen (U-Net): C 1, B 2, A 3
    assert ranks.per_dataset.loc["A", "nih"] == 1 and ranks.per_dataset.loc["B", "nih"] == 2.5
    assert ranks.mean["classification"].to_dict() == pytest.approx({"A": 2.0, "B": 1.75, "C": 2.25})
    assert ranks.mean["segmentation"].to_dict() == pytest.approx({"A": 3.0, "B": 2.0, "C": 1.0})


def test_ties_are_the_intervals_overlapping_the_best():
    cells = pd.DataFrame({
        "section": "linear", "column": "nih", "model": ["best", "overlaps", "apart", "no interval, equal", "conflict"],
        "value": [0.80, 0.79, 0.70, 0.80, float("nan")],
        "ci_low": [0.78, 0.77, 0.60, float("nan"), float("nan")],
        "ci_high": [0.82, 0.81, 0.77, float("nan"), float("nan")],
    })
    marked = mark_best(cells).set_index("model")
    assert marked["best"].to_dict() == {"best": True, "overlaps": False, "apart": False, "no interval, equal": True,
                                        "conflict": False}
    assert marked["tied"].to_dict() == {"best": False, "overlaps": True, "apart": False, "no interval, equal": False,
                                        "conflict": False}


def test_models_that_never_meet_on_a_dataset_are_not_ranked(tmp_path):
    from featx.report.ranks import n_models

    rows = [record(dataset="nih", backbone="A", store_key="a"), seg("spleen", "B", "unet", 0.6)]
    ranks = cross_task_ranks(collect(load_records([write(tmp_path / "r.jsonl", rows)])).cells)
    assert n_models(ranks) == 1  # each is first among one: Figure 1 says what it needs instead of drawing ranks

"""Best/tie marks: the paired tests' verdict replaces interval overlap where a cell's scoring was compared."""

from __future__ import annotations

import pandas as pd

from featx.report.marks import apply_tested_marks, with_tested_marks
from featx.report.ranks import mark_best


def test_overlapping_intervals_are_no_tie_when_the_paired_test_says_worse():
    cells = pd.DataFrame({
        "section": ["linear"] * 3, "column": ["nih"] * 3, "model": ["a", "b", "c"],
        "value": [0.80, 0.78, 0.70], "ci_low": [0.75, 0.73, 0.60], "ci_high": [0.85, 0.83, 0.79],
        "predictions": [{"id": "pa"}, {"id": "pb"}, None],  # c kept no predictions (an older record)
    })
    overlap = mark_best(cells)
    assert overlap["tied"].tolist() == [False, True, True]
    tested = apply_tested_marks(mark_best(with_tested_marks(cells, {"pa": "best", "pb": "worse"})))
    assert tested["best"].tolist() == [True, False, False]
    assert tested["tied"].tolist() == [False, False, True]  # b: significantly worse on the same patients; c: overlap as before
    assert apply_tested_marks(mark_best(with_tested_marks(cells, {"pa": "best", "pb": "tied"})))["tied"].tolist() == [False, True, True]

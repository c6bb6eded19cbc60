"""Best/tie marks from the paired tests (:mod:`featx.report.comparisons`) in place of interval overlap."""

from __future__ import annotations

import pandas as pd

MARK = "tested_mark"  # a cell's mark from the paired tests: "best", "tied" or "worse"


def with_tested_marks(cells: pd.DataFrame, marks: dict[str, str]) -> pd.DataFrame:
    """``cells`` with a ``tested_mark`` column: the paired tests' mark of each cell's scoring (None: not compared)."""
    if cells.empty or "predictions" not in cells:
        return cells
    found = [marks.get(p.get("id")) if isinstance(p, dict) else None for p in cells["predictions"]]
    return cells.assign(**{MARK: found})


def apply_tested_marks(cells: pd.DataFrame) -> pd.DataFrame:
    """Replace the interval-overlap ``best`` / ``tied`` marks by the paired tests' where a cell was compared."""
    if cells.empty or MARK not in cells:
        return cells
    tested = cells[MARK].notna()
    cells = cells.copy()
    cells.loc[tested, "best"] = cells.loc[tested, MARK] == "best"
    cells.loc[tested, "tied"] = cells.loc[tested, MARK] == "tied"
    return cells

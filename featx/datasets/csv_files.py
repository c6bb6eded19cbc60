"""Reading a dataset's CSV files, with every way a file can be unreadable named as one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from featx.datasets.index import DatasetError

__all__ = ["read_csv_file"]


def read_csv_file(path: str | Path, what: str = "CSV", **options: Any) -> pd.DataFrame:
    """The CSV at ``path`` as a frame (all strings, blanks as ``""`` unless ``options`` say otherwise).

    A missing, empty or unparsable file is a :class:`DatasetError` naming ``path`` and ``what``
    it is (e.g. ``"labels CSV"``); ``options`` go to :func:`pandas.read_csv`.
    """
    options = {"dtype": str, "keep_default_na": False, **options}
    try:
        return pd.read_csv(path, **options)
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} not found") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the {what} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot parse {what} ({exc})") from None

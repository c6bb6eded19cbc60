"""Whether a rebuild continues the dataset a published store holds, or is another study.

Two studies can share a dataset name (two CSVs both called ``labels.csv``) and so a
cache key; a rebuild must then never replace one with the other. A rebuild continues
a store only if it comes from the same source (the file or folder given to
``featx extract --root``) and keeps most of the store's samples.
"""

from __future__ import annotations

import numpy as np

from featx.cache.store import FeatureStore, StoreError
from featx.datasets.index import SampleIndex

MIN_KEPT_FRACTION = 0.5  # a rebuild that drops more than half the old samples is another dataset


def check_continues(previous: FeatureStore, index: SampleIndex, source_root: str | None, *, replace: bool) -> None:
    """Refuse to rebuild ``previous`` from ``index`` when it looks like a different dataset.

    Raises :class:`StoreError` (one sentence, naming both sources and the way out) when
    the source root differs from the one recorded in the store, or when the new index
    keeps fewer than half of the store's samples; ``replace`` allows it deliberately.
    """
    if replace:
        return
    recorded = previous.attrs.get("source_root")
    name = previous.attrs["dataset"]
    way_out = (
        f"pass --name to store this study under another dataset name, or --replace to rebuild {name!r} "
        "from the new source"
    )
    if recorded and source_root and recorded != source_root:
        raise StoreError(
            f"{previous.path}: dataset {name!r} in this cache was extracted from {recorded}, not {source_root}; "
            + way_out
        )
    old_ids = previous.index["sample_id"].to_numpy()
    kept = float(np.isin(old_ids, index.table["sample_id"].to_numpy()).mean()) if len(old_ids) else 1.0
    if kept < MIN_KEPT_FRACTION:
        raise StoreError(
            f"{previous.path}: the new index of {name!r} keeps only {kept:.0%} of the {len(old_ids)} samples "
            f"stored (another study with the same name?); " + way_out
        )

"""A rebuild continues a store only from the same source and keeping most of its samples."""

import numpy as np
import pytest

from featx.cache import FeatureStore, StoreError
from featx.cache.lineage import check_continues
from tests.cache.test_store import block_features, create, make_index


def published(tmp_path, n=10, source_root="/lab_a/labels.csv"):
    store = create(tmp_path, make_index(n))
    store.group.attrs["featx"] = store.attrs | {"source_root": source_root}
    for b in range(store.n_blocks):
        k = store.block_slice(b).stop - store.block_slice(b).start
        store.write_block(b, block_features(store, b, b), np.zeros(k, bool), [""] * k)
    return FeatureStore.open(store.publish())


def test_growing_the_same_study_continues_it(tmp_path):
    store = published(tmp_path)
    check_continues(store, make_index(14), "/lab_a/labels.csv", replace=False)  # grew: fine
    check_continues(store, make_index(10).subset(np.arange(10) < 6), "/lab_a/labels.csv", replace=False)  # kept 60%: fine


def test_another_source_or_most_samples_dropped_is_refused_unless_replace(tmp_path):
    store = published(tmp_path)
    with pytest.raises(StoreError, match=r"/lab_a/labels.csv, not /lab_b/labels.csv; pass --name .* --replace"):
        check_continues(store, make_index(10), "/lab_b/labels.csv", replace=False)
    with pytest.raises(StoreError, match=r"keeps only 30% of the 10 samples"):
        check_continues(store, make_index(10).subset(np.arange(10) < 3), "/lab_a/labels.csv", replace=False)
    check_continues(store, make_index(10).subset(np.arange(10) < 3), "/lab_b/labels.csv", replace=True)

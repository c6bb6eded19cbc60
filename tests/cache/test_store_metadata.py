"""The index's metadata columns in a feature store: ``index/meta/<name>`` and ``FeatureStore.metadata``."""

import dataclasses

import numpy as np
import pandas as pd

from featx.cache import FeatureStore
from featx.cache.verify import verify_store
from tests.cache.test_store import block_features, create, make_index


def publish(store):
    for b in store.pending_blocks():
        n = store.block_slice(b).stop - store.block_slice(b).start
        store.write_block(b, block_features(store, b, b), np.zeros(n, bool), [""] * n)
    return FeatureStore.open(store.publish())


def test_metadata_is_stored_aligned_with_the_index(tmp_path):
    index = make_index(10)
    meta = pd.DataFrame({"sex": list("MFMFMFMFMF"), "age": [str(50 + i) for i in range(10)], "notes": [""] * 9 + ["x, y"]})
    store = publish(create(tmp_path, dataclasses.replace(index, metadata=meta)))
    assert sorted(store.group["index/meta"].array_keys()) == ["age", "notes", "sex"]
    got = store.metadata
    assert list(got.columns) == ["sex", "age", "notes"] and len(got) == store.n_rows
    pd.testing.assert_frame_equal(got, meta)
    assert got.loc[store.index["sample_id"] == "s9", "notes"].item() == "x, y"
    report = verify_store(store)  # checksummed like the rest of the index
    assert report.ok and "index/meta/age" not in report.unchecked


def test_a_store_without_metadata_has_a_frame_without_columns(tmp_path):
    store = publish(create(tmp_path, make_index(6)))
    assert "index/meta" not in store.group
    assert store.metadata.shape == (6, 0)

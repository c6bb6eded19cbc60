import numpy as np
import pandas as pd
import pytest
import zarr

from featx.cache import FeatureStore, StoreError, cache_key, find_store, store_dir
from featx.datasets.index import SampleIndex


def make_index(n=10, task="multilabel"):
    table = pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(n)],
        "patient_id": [f"p{i // 2}" for i in range(n)],
        "split": ["train"] * (n - 4) + ["val"] * 2 + ["test"] * 2,
        "source": [f"/data/s{i}.png" for i in range(n)],
        "reader": ["image"] * n,
    })
    labels = np.random.default_rng(0).integers(0, 2, (n, 2)).astype(np.float32)
    return SampleIndex("toy", task, "xray", ["a", "b"], table, labels)


def create(tmp_path, index, block_rows=4, **kwargs):
    key, inputs = cache_key(dataset=index.dataset, backbone={"name": "toy"}, weights_hash="random-init", preprocessing={})
    path = store_dir(tmp_path, index.dataset, "toy") / f"{key}.zarr.partial"
    path.parent.mkdir(parents=True)
    store = FeatureStore.create(path, key=key, key_inputs=inputs, index=index, feature_dims={"block_0": 3, "block_1": 3},
                                block_rows=block_rows, provenance={"backbone": {"name": "toy", "random_init": True}},
                                **kwargs)
    return store


def block_features(store, block, value):
    rows = store.block_slice(block)
    n = rows.stop - rows.start
    feats = np.full((n, 3), value, np.float16)
    return {"block_0": {"cls": feats, "pooled": feats}, "block_1": {"cls": feats + 1, "pooled": feats + 1}}


def test_blocks_cover_rows_and_publish_renames_atomically(tmp_path):
    index = make_index(10)
    store = create(tmp_path, index)
    assert store.n_blocks == 3 and [store.block_slice(b) for b in range(3)] == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert store.pending_blocks() == [0, 1, 2]
    for b in range(3):
        store.write_block(b, block_features(store, b, b), np.zeros(store.block_slice(b).stop - store.block_slice(b).start, bool),
                          [""] * (store.block_slice(b).stop - store.block_slice(b).start))
    final = store.publish()
    assert final.name.endswith(".zarr") and not store.path.exists()
    opened = FeatureStore.open(final)
    assert opened.is_complete and opened.n_rows == 10
    assert opened.read("cls", "block_0")[:, 0].tolist() == [0] * 4 + [1] * 4 + [2] * 2
    np.testing.assert_array_equal(opened.labels, index.labels)
    assert opened.index["sample_id"].tolist() == index.table["sample_id"].tolist()
    assert opened.provenance()["random_init"] is True
    assert find_store(tmp_path, "toy", "toy") == final


def test_cannot_publish_with_unwritten_blocks_and_partial_is_not_opened_by_default(tmp_path):
    store = create(tmp_path, make_index(10))
    store.write_block(0, block_features(store, 0, 0), np.zeros(4, bool), [""] * 4)
    with pytest.raises(StoreError, match="not written"):
        store.publish()
    with pytest.raises(StoreError, match="unfinished extraction"):
        FeatureStore.open(store.path)
    assert FeatureStore.open(store.path, allow_partial=True).pending_blocks() == [1, 2]


def test_failed_rows_are_nan_listed_and_not_valid(tmp_path):
    store = create(tmp_path, make_index(4), block_rows=4)
    failed = np.array([False, True, False, False])
    store.write_block(0, block_features(store, 0, 5), failed, ["", "/data/s1.png: cannot decode image", "", ""])
    opened = FeatureStore.open(store.publish())
    assert opened.valid.tolist() == [True, False, True, True]
    assert np.isnan(opened.read("pooled", "block_1")[1]).all()
    failures = opened.failures()
    assert failures["sample_id"].tolist() == ["s1"] and "cannot decode" in failures["error"].iloc[0]


def test_non_finite_features_of_readable_rows_are_refused(tmp_path):
    store = create(tmp_path, make_index(4), block_rows=4)
    feats = block_features(store, 0, 1)
    feats["block_0"]["cls"] = np.array([[np.inf, 0, 0]] * 4, np.float16)
    with pytest.raises(StoreError, match="non-finite"):
        store.write_block(0, feats, np.zeros(4, bool), [""] * 4)
    assert store.pending_blocks() == [0]


def test_patch_tokens_and_masks_are_sharded_by_block(tmp_path):
    store = create(tmp_path, make_index(8), block_rows=4, patch_grid={"block_0": (2, 2), "block_1": (2, 2)}, mask_size=8)
    group = zarr.open_group(str(store.path), mode="r")
    patch = group["features/block_1/patch"]
    assert patch.shards == (4, 2, 2, 3) and patch.chunks == (1, 2, 2, 3)
    assert group["masks"].shards == (4, 8, 8)
    assert group["features/block_0/cls"].chunks == (4, 3) and group["written"].chunks == (4,)


def test_find_store_lists_what_exists_when_missing(tmp_path):
    store = create(tmp_path, make_index(4), block_rows=4)
    store.write_block(0, block_features(store, 0, 1), np.zeros(4, bool), [""] * 4)
    store.publish()
    with pytest.raises(StoreError, match="toy/toy"):
        find_store(tmp_path, "other", "toy")


def test_open_rejects_a_plain_zarr_group(tmp_path):
    zarr.open_group(str(tmp_path / "x.zarr"), mode="w", zarr_format=3)
    with pytest.raises(StoreError, match="not a featx feature store"):
        FeatureStore.open(tmp_path / "x.zarr")


def test_create_refuses_an_index_with_a_patient_in_two_splits(tmp_path):
    index = make_index(10)
    table = index.table.copy()
    table.loc[9, "patient_id"] = "p0"  # a test image of train patient p0
    leaky = SampleIndex("toy", "multilabel", "xray", ["a", "b"], table, index.labels)
    with pytest.raises(StoreError, match=r"patient 'p0' appears in splits \['test', 'train'\].*patient-level"):
        create(tmp_path, leaky)
    assert not any(tmp_path.rglob("*.zarr.partial"))  # nothing half-made left behind

"""The direct reader of per-row sharded arrays returns exactly what zarr returns, and catches damage."""

import numpy as np
import pytest
import zarr

from featx.cache.shards import ShardChecksumError, shard_rows
from featx.cache.store import create_array


def per_row_array(folder, name, data, *, shard, compress=True, fill_value=0):
    group = zarr.open_group(str(folder), mode="a", zarr_format=3)
    array = create_array(group, name, shape=data.shape, chunks=(1, *data.shape[1:]), shards=(shard, *data.shape[1:]),
                         dtype=data.dtype, fill_value=fill_value, compress=compress)
    return array


@pytest.mark.parametrize(
    ("dtype", "compress", "fill"),
    [(np.float16, True, np.nan), (np.float16, False, np.nan), (np.int8, True, 0), (np.uint8, True, 0)],
)
def test_rows_equal_zarrs_in_any_order_with_a_partial_last_shard_and_unwritten_rows(tmp_path, dtype, compress, fill):
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(23, 3, 4, 5)) * 40).astype(dtype)
    array = per_row_array(tmp_path, "a", data, shard=8, compress=compress, fill_value=fill)
    array[:16] = data[:16]  # the last shard (rows 16-22) is never written: fill values
    reader = shard_rows(array)
    assert reader is not None and reader.compressed == compress and reader.chunk_crc
    rows = np.array([22, 3, 3, 0, 15, 8, 17, 7])
    expected = array.get_orthogonal_selection((rows,))
    got = reader.read(rows)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # NaN == NaN here
    np.testing.assert_array_equal(reader.read(np.arange(23)), array[:])


def test_a_flipped_byte_in_a_chunk_or_in_the_shard_index_fails_the_checksum(tmp_path):
    data = np.arange(4 * 6 * 2, dtype=np.float16).reshape(4, 6, 2)
    array = per_row_array(tmp_path, "a", data, shard=4, compress=False, fill_value=np.nan)
    array[:] = data
    reader = shard_rows(array)
    shard = reader.shard_file(0)
    raw = bytearray(shard.read_bytes())
    raw[3] ^= 0xFF  # inside row 0's chunk
    shard.write_bytes(bytes(raw))
    np.testing.assert_array_equal(reader.read(np.array([1])), data[1:2])  # the other rows still read
    with pytest.raises(ShardChecksumError, match="chunk fails its crc32c"):
        reader.read(np.array([0]))
    raw[3] ^= 0xFF
    raw[-6] ^= 0xFF  # inside the index
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardChecksumError, match="shard index fails"):
        reader.read(np.array([1]))
    shard.write_bytes(bytes(raw[:10]))
    with pytest.raises(ShardChecksumError, match="truncated"):
        reader.read(np.array([1]))


def test_other_layouts_are_left_to_zarr(tmp_path):
    group = zarr.open_group(str(tmp_path), mode="w", zarr_format=3)
    two_rows = create_array(group, "two", shape=(8, 3), chunks=(2, 3), shards=(4, 3), dtype=np.float32)
    unsharded = create_array(group, "flat", shape=(8, 3), chunks=(4, 3), dtype=np.float32)
    in_memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 3), chunks=(1, 3), shards=(4, 3), dtype=np.float32)
    assert shard_rows(two_rows) is None and shard_rows(unsharded) is None and shard_rows(in_memory) is None


def patch_store(folder, patch_format):
    """A published 2-block segmentation store of random patch tokens (one layer) and masks."""
    import pandas as pd

    from featx.cache import FeatureStore
    from featx.datasets.index import SampleIndex

    n, rng = 10, np.random.default_rng(1)
    table = pd.DataFrame({"sample_id": [f"s{i}.png" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "split": ["train"] * n, "source": [f"/s{i}.png" for i in range(n)], "reader": "image"})
    index = SampleIndex(dataset="toy_seg", task="segmentation", modality="other", label_names=["background", "a"],
                        table=table, labels=np.zeros((n, 0), np.float32))
    store = FeatureStore.create(folder / "toy.zarr.partial", key=f"toy-{patch_format}", key_inputs={}, index=index,
                                feature_dims={"block": 8}, block_rows=6, patch_grid={"block": (2, 3)}, mask_size=4,
                                patch_format=patch_format)
    tokens = rng.normal(size=(n, 2, 3, 8)).astype(np.float32)
    masks = rng.integers(0, 2, size=(n, 4, 4)).astype(np.uint8)
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        pooled = tokens[rows].mean((1, 2))
        store.write_block(block, {"block": {"cls": pooled, "pooled": pooled, "patch": tokens[rows]}},
                          np.zeros(rows.stop - rows.start, bool), [""] * (rows.stop - rows.start), masks[rows])
    return FeatureStore.open(store.publish()), tokens, masks


@pytest.mark.parametrize("patch_format", ["float16", "int8"])
def test_a_feature_store_reads_patch_tokens_directly_and_names_verify_on_damage(tmp_path, patch_format):
    from featx.cache.store import DamagedStoreError

    store, tokens, masks = patch_store(tmp_path, patch_format)
    patch = store.group["features/block/patch"]
    assert shard_rows(patch).compressed == (patch_format == "int8")  # float16 tokens are stored without zstd
    rows = np.array([9, 0, 5, 6])
    tolerance = 2e-3 if patch_format == "float16" else np.abs(tokens).max() / 127
    np.testing.assert_allclose(store.read_patch("block", rows), tokens[rows], atol=tolerance)
    np.testing.assert_array_equal(store.read_masks(rows), masks[rows])
    np.testing.assert_array_equal(store.read_patch("block", slice(2, 8)), store.read_patch("block", np.arange(2, 8)))

    shard = shard_rows(patch).shard_file(1)  # rows 6-9
    raw = bytearray(shard.read_bytes())
    raw[5] ^= 0x10
    shard.write_bytes(bytes(raw))
    reopened = type(store).open(store.path)
    np.testing.assert_allclose(reopened.read_patch("block", np.array([0])), tokens[[0]], atol=tolerance)
    with pytest.raises(DamagedStoreError, match="featx cache verify"):
        reopened.read_patch("block", np.array([6]))

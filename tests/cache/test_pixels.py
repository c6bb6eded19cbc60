import numpy as np
import pandas as pd
import pytest
import zarr

from featx.cache import FeatureStore, StoreError
from featx.cache.pixels import PixelStore, pixel_key, pixel_layout, pixel_paths
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig


def tiny_index(n: int = 10) -> SampleIndex:
    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "split": ["train"] * n, "source": [f"/data/{i}.png" for i in range(n)],
                          "reader": ["image"] * n})
    return SampleIndex("tiny", "binary", "xray", ["neg", "pos"], table, np.eye(2)[np.arange(n) % 2])


def test_a_store_written_block_by_block_is_published_and_readable_with_plain_zarr(tmp_path):
    index = tiny_index()
    key, inputs = pixel_key("tiny", PreprocessConfig(size=8).to_dict(), 8)
    final, partial = pixel_paths(tmp_path, "tiny", key)
    store = PixelStore.create(partial, key=key, key_inputs=inputs, index=index, stamps=np.array(["1:2"] * 10),
                              size=8, block_rows=4)
    assert store.n_blocks == 3 and store.pending_blocks() == [0, 1, 2]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 8, 8), dtype=np.uint8)
    errors = [""] * 10
    errors[5] = "/data/5.png: cannot decode image"
    for block in range(3):
        rows = store.block_slice(block)
        with pytest.raises(StoreError, match="not written"):
            store.publish()
        store.write_block(block, images[rows], None, errors[rows])
    with pytest.raises(StoreError, match="unfinished"):
        PixelStore.open(partial)
    path = store.publish()
    assert path == final and not partial.exists()

    group = zarr.open_group(str(path), mode="r")  # no featx needed to read it
    np.testing.assert_array_equal(group["images"][:], images)
    assert group["images"].metadata.dimension_names == ("sample", "y", "x")
    assert list(group["failed"][:]) == [i == 5 for i in range(10)]
    assert group.attrs["featx_pixels"]["key"] == key and group.attrs["featx_pixels"]["complete"]
    opened = PixelStore.open_key(tmp_path, "tiny", PreprocessConfig(size=8).to_dict())
    assert opened.failures()["source"].tolist() == ["/data/5.png"]
    np.testing.assert_array_equal(opened.read_images(np.array([7, 2])), images[[7, 2]])
    with pytest.raises(StoreError, match="not a featx feature store"):
        FeatureStore.open(path)  # never mistaken for a feature store


def test_a_different_preprocessing_or_bit_depth_is_another_key_and_never_opened(tmp_path):
    base = PreprocessConfig(size=8).to_dict()
    keys = {pixel_key("tiny", base, 8)[0], pixel_key("tiny", base, 16)[0],
            pixel_key("tiny", PreprocessConfig(size=16).to_dict(), 8)[0],
            pixel_key("tiny", PreprocessConfig(size=8, intensity="window").to_dict(), 8)[0],
            pixel_key("other", base, 8)[0]}
    assert len(keys) == 5
    with pytest.raises(StoreError, match="no pixel store"):
        PixelStore.open_key(tmp_path, "tiny", base, bits=16)


def test_layout_keeps_shards_near_64_mib_made_of_whole_chunks():
    for size, bits in ((28, 8), (224, 8), (448, 8), (1024, 16)):
        chunk, block = pixel_layout(size, bits)
        plane = size * size * bits // 8
        assert block % chunk == 0 and 1 <= chunk <= 64 and block <= 1024
        assert block * plane <= 64 * 2**20 or block == chunk


def test_a_flipped_byte_in_the_images_is_damage_that_names_verify(tmp_path):
    from featx.cache.store import DamagedStoreError

    key, inputs = pixel_key("tiny", PreprocessConfig(size=8).to_dict(), 8)
    final, partial = pixel_paths(tmp_path, "tiny", key)
    store = PixelStore.create(partial, key=key, key_inputs=inputs, index=tiny_index(4), stamps=np.array(["1:2"] * 4),
                              size=8, block_rows=4)
    store.write_block(0, np.random.default_rng(0).integers(0, 256, (4, 8, 8), dtype=np.uint8), None, [""] * 4)
    path = store.publish()
    shard = next(p for p in (path / "images").rglob("*") if p.is_file() and p.name != "zarr.json")
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 3] ^= 0x40
    shard.write_bytes(bytes(raw))
    with pytest.raises(DamagedStoreError, match="featx cache verify"):
        PixelStore.open(path).read_images(slice(0, 4))

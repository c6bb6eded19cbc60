"""docs/cache-format.md promises a store readable without featx: plain zarr and xarray."""

import numpy as np
import xarray as xr
import zarr

from tests.cache.test_store import block_features, create, make_index


def test_a_store_reads_with_plain_zarr_and_xarray_as_documented(tmp_path):
    store = create(tmp_path, make_index(6), block_rows=4)
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        failed = np.zeros(rows.stop - rows.start, bool)
        store.write_block(block, block_features(store, block, block + 1), failed, [""] * len(failed))
    path = store.publish()

    g = zarr.open_group(str(path), mode="r")
    meta = g.attrs["featx"]
    ok = g["written"][:] & ~g["failed"][:]
    last = meta["layers"][-1]
    cls = g[f"features/{last}/cls"][:].astype(np.float32)[ok]
    assert cls.shape == (6, 3) and meta["key"] == path.name.removesuffix(".zarr")
    assert list(g["index/split"][:][ok]) == ["train", "train", "val", "val", "test", "test"]

    da = xr.open_zarr(g.store, group=f"features/{last}", consolidated=False)["cls"]
    assert da.dims == ("sample", "feature")
    np.testing.assert_array_equal(da.values.astype(np.float32), cls)

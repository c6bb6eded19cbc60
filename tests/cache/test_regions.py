"""Region-pooled features equal a direct masked mean of the stored tokens (2D patch tokens and 3D maps)."""

import numpy as np
import pandas as pd
import pytest

from featx.cache.regions import read_roi, region_features
from featx.cache.store import FeatureStore, StoreError
from featx.datasets.index import SampleIndex
from featx.datasets.volumes import VolumePrep
from tests.volume_data import write_nifti


def _store(tmp_path, grid, mask_shape, preprocessing):
    n = 3
    table = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "split": ["train", "val", "test"], "source": ["x"] * n, "reader": ["r"] * n,
                          "volume_id": [f"s{i}" if len(grid) == 3 else "" for i in range(n)],
                          "slice_index": [-1] * n, "slice_axis": [-1] * n, "mask_source": ["m"] * n,
                          "mask_reader": ["r"] * n})
    index = SampleIndex("regions", "segmentation", "ct", ["background", "liver", "lesion"], table, np.zeros((n, 0)))
    store = FeatureStore.create(tmp_path / "s.zarr.partial", key="k", key_inputs={}, index=index,
                                feature_dims={"last": 5}, block_rows=n, patch_grid={"last": grid},
                                mask_size=mask_shape if len(grid) == 3 else mask_shape[0],
                                provenance={"preprocessing": preprocessing})
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(n, *grid, 5)).astype(np.float16)
    masks = np.zeros((n, *mask_shape), np.uint8)
    store.write_block(0, {"last": {"cls": tokens.mean(axis=tuple(range(1, len(grid) + 1))),
                                   "pooled": tokens.mean(axis=tuple(range(1, len(grid) + 1))), "patch": tokens}},
                      np.zeros(n, bool), [""] * n, masks=masks)
    return store, tokens.astype(np.float32)


def test_2d_regions_equal_the_masked_mean_of_patch_tokens(tmp_path):
    store, tokens = _store(tmp_path, (4, 4), (16, 16), {"size": 16})
    cells = np.zeros((4, 4), bool)
    cells[1:3, 0:2] = True
    mask = np.kron(cells, np.ones((4, 4), np.uint8))  # whole token cells: weights 0 / 1
    mask[12:16, 12:16] = 2  # one more class in the last cell
    rows = region_features(store, "last", masks={1: mask})
    assert list(rows.table["region_id"]) == ["s1:1", "s1:2"] and list(rows.table["label"]) == ["liver", "lesion"]
    assert rows.table["patient_id"].tolist() == ["p1", "p1"] and rows.table["split"].tolist() == ["val", "val"]
    assert np.allclose(rows.features[0], tokens[1][cells].mean(0), atol=1e-5)
    assert np.allclose(rows.features[1], tokens[1][3, 3], atol=1e-5)
    half = np.zeros((16, 16), np.uint8)
    half[0:2, 0:4] = 1  # half of token (0, 0): weighted by its covered fraction, alone it is that token
    assert np.allclose(region_features(store, "last", masks={0: half}).features[0], tokens[0][0, 0], atol=1e-5)


def test_3d_lesions_as_components_from_a_user_nifti_roi(tmp_path):
    prep = VolumePrep(tile=8, shape=(16, 16, 16), spacing=(2.0, 2.0, 2.0), windows=((0.0, 1.0),)).key()
    store, tokens = _store(tmp_path, (4, 4, 4), (16, 16, 16), prep)
    roi = np.zeros((16, 16, 16), np.uint8)
    roi[0:4, 0:4, 0:4] = 2  # lesion 1: token (0, 0, 0)
    roi[8:16, 12:16, 12:16] = 2  # lesion 2: tokens (2..3, 3, 3)
    write_nifti(tmp_path / "roi.nii.gz", roi, (2.0, 2.0, 2.0))
    mask = read_roi(tmp_path / "roi.nii.gz", store)
    assert np.array_equal(mask, roi)
    rows = region_features(store, "last", masks={2: mask}, components=True)
    assert list(rows.table["region_id"]) == ["s2:2.1", "s2:2.2"] and set(rows.table["label"]) == {"lesion"}
    assert np.allclose(rows.features[0], tokens[2][0, 0, 0], atol=1e-5)
    assert np.allclose(rows.features[1], tokens[2][2:4, 3, 3].mean(0), atol=1e-5)
    data = rows.to_probe_data()
    assert data.level == "region" and data.n == 2 and list(data.ids) == ["s2:2.1", "s2:2.2"]


def test_a_layer_without_tokens_is_refused(tmp_path):
    store, _ = _store(tmp_path, (4, 4), (16, 16), {"size": 16})
    with pytest.raises(StoreError, match="no stored patch tokens"):
        region_features(store, "other", masks={0: np.zeros((16, 16), np.uint8)})

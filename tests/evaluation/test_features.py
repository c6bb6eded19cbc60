import numpy as np
import pytest

from featx.cache import FeatureStore
from featx.evaluation.features import ProbeData, ProbeError, block_names, load_probe_data
from tests.probes.conftest import planted


def test_block_names_follow_dinov2_linear_input():
    layers = ["b8", "b9", "b10", "b11"]
    assert block_names(layers, 1, False) == ["cls/b11"]
    assert block_names(layers, 4, True) == ["cls/b8", "cls/b9", "cls/b10", "cls/b11", "pooled/b11"]
    with pytest.raises(ProbeError, match="n_last_blocks=5"):
        block_names(layers, 5)


def test_features_concatenate_in_order():
    p = planted(n_patients=10)
    data = ProbeData.from_arrays(p["blocks"], p["labels"], p["patients"], p["split"], task="multiclass")
    x = data.features(4, True)
    d = p["blocks"]["cls/block_0"].shape[1]
    assert x.shape == (20, 5 * d) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :d], p["blocks"]["cls/block_0"])
    np.testing.assert_array_equal(x[:, -d:], p["blocks"]["pooled/block_3"])


def test_load_from_store_keeps_valid_rows_only(store_factory):
    path = store_factory(task="multilabel", failed_rows=(3, 10))
    store = FeatureStore.open(path)
    data = load_probe_data(store, n_last_blocks=4, avgpool=True)
    assert data.n == store.n_rows - 2 and data.n_invalid == 2
    assert "s00003" not in set(data.ids)
    full = store.read("cls", store.layers[-1])
    np.testing.assert_allclose(data.blocks[f"cls/{store.layers[-1]}"], np.delete(full, [3, 10], 0))
    assert data.provenance["store_key"] == store.key and data.provenance["random_init"] is True
    assert data.level == "sample"


def test_3d_store_gives_one_row_per_volume_with_mean_features(store_factory):
    path = store_factory(task="binary", volumes=True, n_patients=30, per_patient=4)
    store = FeatureStore.open(path)
    data = load_probe_data(store)
    assert data.level == "volume" and data.n == 30
    layer = store.layers[-1]
    rows = store.read("cls", layer)
    index = store.index
    first = index["volume_id"].iloc[0]
    expected = rows[(index["volume_id"] == first).to_numpy()].mean(0)
    np.testing.assert_allclose(data.blocks[f"cls/{layer}"][list(data.ids).index(first)], expected, rtol=1e-5, atol=1e-5)


def test_segmentation_or_bad_shapes_are_refused():
    p = planted(n_patients=5)
    with pytest.raises(ProbeError, match="classification"):
        ProbeData.from_arrays(p["blocks"], p["labels"], p["patients"], p["split"], task="segmentation")
    with pytest.raises(ProbeError, match="rows"):
        ProbeData.from_arrays(p["blocks"], p["labels"][:3], p["patients"][:3], p["split"][:3], task="multiclass")

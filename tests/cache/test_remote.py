"""A shared cache read over HTTP (loopback only): laptops probe without copying the store."""

import numpy as np
import pytest
from typer.testing import CliRunner

from featx.cache import FeatureStore, StoreError
from featx.cli import app
from tests.cache.test_store import block_features, create, make_index


def publish_toy_store(tmp_path, n=40):
    store = create(tmp_path, make_index(n), block_rows=16)
    rng = np.random.default_rng(0)
    labels = store.labels
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        feats = block_features(store, block, 0)
        for layer in feats:
            signal = (labels[rows] @ np.array([[3.0, 0, 0], [0, 3.0, 0]])).astype(np.float16)
            noise = rng.normal(0, 0.3, (rows.stop - rows.start, 3)).astype(np.float16)
            feats[layer] = {"cls": signal + noise, "pooled": signal + noise}
        store.write_block(block, feats, np.zeros(rows.stop - rows.start, bool), [""] * (rows.stop - rows.start))
    return store.publish()


def test_a_published_store_opens_over_http_with_the_same_contents(tmp_path, served):
    local = FeatureStore.open(publish_toy_store(tmp_path))
    url = f"{served}/{local.path.relative_to(tmp_path).as_posix()}"
    remote = FeatureStore.open(url)
    assert remote.key == local.key and remote.path == url
    np.testing.assert_array_equal(remote.read("cls", "block_1"), local.read("cls", "block_1"))
    assert remote.index["sample_id"].tolist() == local.index["sample_id"].tolist()
    assert remote.provenance()["store_path"] == url
    with pytest.raises(StoreError, match="only a local"):
        remote.publish()
    with pytest.raises(StoreError, match="not a feature store"):
        FeatureStore.open(f"{served}/no-such-store.zarr")


def test_featx_probe_runs_on_a_store_url(tmp_path, served):
    local = FeatureStore.open(publish_toy_store(tmp_path, n=60))
    url = f"{served}/{local.path.relative_to(tmp_path).as_posix()}"
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(app, ["probe", "--store", url, "--setting", "knn", "--k", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f'"store_path": "{url}"' in out.read_text()

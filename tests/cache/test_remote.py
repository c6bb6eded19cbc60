"""A shared cache read over HTTP (loopback only): laptops probe without copying the store."""

import numpy as np
import pytest
from typer.testing import CliRunner

from featx.cache import FeatureStore, StoreError
from featx.cache.remote import (
    BACKOFF_S,
    RETRIES_ENV,
    TIMEOUT_ENV,
    RemoteStoreError,
    http_settings,
)
from featx.cache.versions import Versions
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


def pointer_url(served, tmp_path, path):
    return f"{served}/{path.relative_to(tmp_path).as_posix()}"


def test_a_server_that_never_answers_fails_soon_naming_the_url(tmp_path, monkeypatch, stalled):
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    monkeypatch.setenv(RETRIES_ENV, "1")
    url = f"{stalled}/cache/nih/dinov2/0123456789abcdef.zarr"
    with pytest.raises(RemoteStoreError) as caught:
        FeatureStore.open(url)
    pointer = url.removesuffix(".zarr") + ".pointer.json"  # the first file a reader asks for
    assert str(caught.value) == f"{pointer}: no answer within 1 s (2 tries; set {TIMEOUT_ENV} to wait longer)"
    for command in (["cache", "info", url], ["cache", "verify", url],
                    ["probe", "--store", url, "--setting", "knn", "--out", str(tmp_path / "r.jsonl")]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1 and f"{pointer}: no answer within 1 s" in result.output, command


def test_the_default_wait_is_seconds_not_minutes(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    monkeypatch.delenv(RETRIES_ENV, raising=False)
    timeout, retries = http_settings()
    assert timeout * (retries + 1) + BACKOFF_S * (2**retries - 1) < 60
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(StoreError, match=TIMEOUT_ENV):
        http_settings()


def test_a_login_page_and_a_half_zarr_json_are_named_as_not_a_featx_store(tmp_path, served, login_page):
    for command in ("info", "verify"):
        url = f"{login_page}/cache/nih/dinov2/0123456789abcdef.zarr"
        result = CliRunner().invoke(app, ["cache", command, url])
        assert result.exit_code == 1
        assert f"{url}: not a featx feature store: {url}/zarr.json is an HTML page (a login or error page?)" in (
            result.output)
    version = FeatureStore.open(publish_toy_store(tmp_path)).path
    whole = (version / "zarr.json").read_bytes()
    (version / "zarr.json").write_bytes(whole[: len(whole) // 2])
    url = pointer_url(served, tmp_path, version)
    result = CliRunner().invoke(app, ["cache", "info", url])
    assert result.exit_code == 1
    assert f"{url}: not a featx feature store: {url}/zarr.json is not valid JSON (cut short or damaged)" in result.output


def test_a_transient_server_error_is_retried(tmp_path, flaky):
    base, sent = flaky
    local = FeatureStore.open(publish_toy_store(tmp_path))
    remote = FeatureStore.open(pointer_url(base, tmp_path, local.path))
    np.testing.assert_array_equal(remote.read("cls", "block_1"), local.read("cls", "block_1"))
    assert sent[:2] == [503, 200]


def test_a_version_removed_by_gc_while_a_remote_probe_reads_it_is_named(tmp_path, served):
    from tests.cache.test_versions import publish

    pointer = publish(tmp_path, 1)
    remote = FeatureStore.open(pointer_url(served, tmp_path, pointer))  # pinned to version 1
    publish(tmp_path, 2)
    assert Versions.of(pointer).collect(keep=1) == ([1], [])  # a remote reader holds no lock on the server
    with pytest.raises(StoreError) as caught:
        remote.read("cls", "block_1")
    assert str(caught.value).startswith(f"{remote.path}: this store version was removed from the server while it "
                                        "was read")

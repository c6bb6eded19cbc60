"""A cache shared on S3: the pointer document, `featx cache push`, and readers of the bucket.

Against a real S3 wire protocol on 127.0.0.1 (moto's server mode) through s3fs, the way
zarr tests its own S3 support.
"""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cache.key import cache_key
from featx.cache.pointer import PointerError, pointer_name
from featx.cache.push import push_store, stores_to_push
from featx.cache.remote_cache import remote_stores
from featx.cache.store import store_dir
from featx.cache.versions import Versions
from featx.cli import app
from tests.cache.test_store import make_index

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def bucket(s3_endpoint, monkeypatch, request):
    """A fresh bucket on the moto server; s3fs (and boto) find it through the environment."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    name = request.node.name.replace("_", "-")[:50].strip("-").lower()
    s3fs.S3FileSystem().mkdir(name)
    yield name
    s3fs.S3FileSystem.clear_instance_cache()


def publish_version(cache, value: float, n=40):
    """Publish the next version of the one toy store under ``cache`` (features shifted by ``value``)."""
    index = make_index(n)
    key, inputs = cache_key(dataset=index.dataset, backbone={"name": "toy"}, weights_hash="random-init", preprocessing={})
    path = store_dir(cache, index.dataset, "toy") / f"{key}.zarr.partial"
    path.parent.mkdir(parents=True, exist_ok=True)
    store = FeatureStore.create(path, key=key, key_inputs=inputs, index=index, feature_dims={"block_0": 3, "block_1": 3},
                                block_rows=20, provenance={"backbone": {"name": "toy", "random_init": True}})
    rng = np.random.default_rng(int(value))
    labels = store.labels
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        signal = labels[rows] @ np.array([[3.0, 0, 0], [0, 3.0, 0]]) + value
        feats = (signal + rng.normal(0, 0.3, signal.shape)).astype(np.float16)
        n_rows = rows.stop - rows.start
        store.write_block(block, {"block_0": {"cls": feats, "pooled": feats}, "block_1": {"cls": feats, "pooled": feats}},
                          np.zeros(n_rows, bool), [""] * n_rows)
    return store.publish()


def test_a_local_publish_writes_the_pointer_document_and_readers_follow_it_without_the_symlink(tmp_path):
    pointer = publish_version(tmp_path, 0)
    publish_version(tmp_path, 5)
    versions = Versions.of(pointer)
    document = json.loads((pointer.parent / pointer_name(versions.key)).read_text())
    assert document["version"] == 2 == versions.current()
    assert document["path"] == f"{versions.key}.versions/v0002.zarr"
    expected = FeatureStore.open(pointer).read("cls", "block_1")
    pointer.unlink()  # a copy of the bucket: no symlink, only the document
    assert versions.current() == 2
    opened = FeatureStore.open(pointer)
    assert opened.path == versions.path(2)
    np.testing.assert_array_equal(opened.read("cls", "block_1"), expected)
    (pointer.parent / pointer_name(versions.key)).write_text('{"featx_pointer": 1, "version": 1, "path": "../x"}')
    with pytest.raises(PointerError, match="not a version beside it"):
        FeatureStore.open(pointer)


@pytest.mark.slow
def test_push_then_ls_verify_and_probe_from_s3_match_the_local_cache(tmp_path, bucket):
    cache = tmp_path / "cache"
    pointer = publish_version(cache, 0, n=60)
    runner = CliRunner()
    pushed = runner.invoke(app, ["cache", "push", str(cache), f"s3://{bucket}/lab"])
    assert pushed.exit_code == 0, pushed.output
    assert "published" in pushed.output and "0 already there" in pushed.output
    again = runner.invoke(app, ["cache", "push", str(cache), f"s3://{bucket}/lab"])
    assert "up to date" in again.output and " 0 objects uploaded" in again.output

    relative = pointer.relative_to(cache).as_posix()
    url = f"s3://{bucket}/lab/{relative}"
    assert remote_stores(f"s3://{bucket}/lab") == [url]
    listed = runner.invoke(app, ["cache", "ls", f"s3://{bucket}/lab"])
    assert listed.exit_code == 0 and FeatureStore.open(pointer).key in listed.output and "published" in listed.output
    verified = runner.invoke(app, ["cache", "verify", f"s3://{bucket}/lab"])
    assert verified.exit_code == 0, verified.output
    assert f"ok       {url}" in verified.output

    remote, local = FeatureStore.open(url), FeatureStore.open(pointer)
    assert remote.path == f"s3://{bucket}/lab/{relative.removesuffix('.zarr')}.versions/v0001.zarr"
    np.testing.assert_array_equal(remote.read("cls", "block_1"), local.read("cls", "block_1"))
    records = {}
    for name, store in (("s3", url), ("local", str(pointer))):
        out = tmp_path / f"{name}.jsonl"
        result = runner.invoke(app, ["probe", "--store", store, "--setting", "knn", "--k", "5", "--bootstrap", "20",
                                     "--out", str(out)])
        assert result.exit_code == 0, result.output
        test = [r for r in map(json.loads, out.read_text().splitlines()) if r.get("split") == "test"]
        records[name] = [(r["setting"], r["metric"], r.get("class"), r["value"], r["ci_low"], r["ci_high"]) for r in test]
    assert records["s3"] == records["local"] and records["s3"]


def test_an_interrupted_push_leaves_the_previous_version_readable_and_a_rerun_resumes(tmp_path, bucket):
    cache = tmp_path / "cache"
    destination = f"s3://{bucket}/lab"
    pointer = publish_version(cache, 0)
    versions, relative = next(stores_to_push(cache))
    push_store(versions, relative, destination)
    first = FeatureStore.open(pointer.resolve()).read("cls", "block_1")
    publish_version(cache, 7)

    class Killed(Exception):
        pass

    def die(done, total):
        raise Killed(f"{done} of {total}")

    with pytest.raises(Killed):
        push_store(versions, relative, destination, batch=5, on_batch=die)
    url = f"{destination}/{relative}/{versions.key}.zarr"
    reader = FeatureStore.open(url)
    assert reader.attrs["version"] == 1
    np.testing.assert_array_equal(reader.read("cls", "block_1"), first)

    resumed = push_store(versions, relative, destination)
    total = sum(1 for p in versions.path(2).rglob("*") if p.is_file())
    assert (resumed.state, resumed.version) == ("published", 2)
    assert resumed.skipped == 5 and resumed.uploaded == total - 5
    latest = FeatureStore.open(url)
    assert latest.attrs["version"] == 2
    np.testing.assert_array_equal(latest.read("cls", "block_1"), FeatureStore.open(pointer).read("cls", "block_1"))
    np.testing.assert_array_equal(reader.read("cls", "block_1"), first)  # the old reader stays on its version


def test_a_reader_during_a_push_sees_the_whole_previous_version_then_the_whole_new_one(tmp_path, bucket):
    cache = tmp_path / "cache"
    destination = f"s3://{bucket}/lab"
    pointer = publish_version(cache, 0)
    versions, relative = next(stores_to_push(cache))
    push_store(versions, relative, destination)
    old = FeatureStore.open(pointer.resolve()).read("cls", "block_0")
    publish_version(cache, 9)
    new = FeatureStore.open(pointer).read("cls", "block_0")
    url = f"{destination}/{relative}/{versions.key}.zarr"
    seen = []

    def read_meanwhile(done, total):
        store = FeatureStore.open(url)
        seen.append((done, store.attrs["version"]))
        np.testing.assert_array_equal(store.read("cls", "block_0"), old)

    push_store(versions, relative, destination, batch=4, on_batch=read_meanwhile)
    assert len(seen) > 3 and {version for _, version in seen} == {1}
    np.testing.assert_array_equal(FeatureStore.open(url).read("cls", "block_0"), new)


def test_push_refuses_what_is_not_a_cache_in_one_sentence(tmp_path):
    result = CliRunner().invoke(app, ["cache", "push", str(tmp_path / "nowhere"), "s3://b/p"])
    assert result.exit_code == 1 and "no such cache folder" in result.output

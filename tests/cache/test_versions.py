"""Published versions are immutable: readers keep theirs, gc spares them, a kill between the switch steps heals."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import zarr

from featx.cache import FeatureStore
from featx.cache.versions import Versions
from tests.cache.test_store import block_features, create, make_index


def publish(tmp_path, value, n=10):
    """Build and publish the next version of the toy store, its block_0 CLS all equal to ``value``."""
    folder = tmp_path / "toy" / "toy"
    if folder.is_dir():  # a rebuild: the next partial of the same key beside the published versions
        old = FeatureStore.open(next(folder.glob("*.zarr")))
        store = FeatureStore.create(
            folder / f"{old.key}.zarr.partial", key=old.key, key_inputs=old.attrs["key_inputs"], index=make_index(n),
            feature_dims={"block_0": 3, "block_1": 3}, block_rows=4, provenance={"backbone": {"name": "toy"}},
        )
    else:
        store = create(tmp_path, make_index(n))
    for b in range(store.n_blocks):
        k = store.block_slice(b).stop - store.block_slice(b).start
        store.write_block(b, block_features(store, b, value), np.zeros(k, bool), [""] * k)
    return store.publish()


def test_a_reader_keeps_the_version_it_opened_while_the_next_is_published(tmp_path, served):
    pointer = publish(tmp_path, 1)
    url = f"{served}/{pointer.relative_to(tmp_path).as_posix()}"
    local, remote = FeatureStore.open(pointer), FeatureStore.open(url)
    first = local.read("cls", "block_0")
    assert local.attrs["version"] == 1 and remote.path.endswith(".versions/v0001.zarr")

    assert publish(tmp_path, 7) == pointer  # a rebuild: version 2 behind the same pointer
    np.testing.assert_array_equal(local.read("cls", "block_0"), first)  # bit-identical
    np.testing.assert_array_equal(remote.read("cls", "block_0"), first)
    fresh = FeatureStore.open(pointer)
    assert fresh.attrs["version"] == 2 and (fresh.read("cls", "block_0") == 7).all()
    assert FeatureStore.open(url).provenance()["store_version"] == 2
    assert local.provenance()["store_version"] == 1 and local.provenance()["store_key"] == fresh.key
    plain = zarr.open_group(str(pointer), mode="r")  # plain zarr follows the pointer
    assert plain.attrs["featx"]["version"] == 2


READER = textwrap.dedent("""
    import sys, time
    from featx.cache import FeatureStore
    store = FeatureStore.open(sys.argv[1])
    print(store.attrs["version"], flush=True)
    time.sleep(120)
""")


def test_gc_keeps_the_last_versions_and_any_being_read(tmp_path):
    pointer = publish(tmp_path, 1)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(pointer)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert reader.stdout.readline().strip() == "1"  # it holds version 1
        publish(tmp_path, 2)
        publish(tmp_path, 3)
        versions = Versions.of(pointer)
        assert versions.collect(keep=1) == ([2], [1])  # 3 is current; 1 is being read
    finally:
        reader.kill()
        reader.wait()
    assert versions.collect(keep=1) == ([1], [])
    assert versions.numbers() == [3] and FeatureStore.open(pointer).attrs["version"] == 3


KILLED_BETWEEN_STEPS = textwrap.dedent("""
    import os, signal, sys
    from featx.cache.versions import Versions
    Versions.switch = lambda self, number: os.kill(os.getpid(), signal.SIGKILL)  # die between rename and switch
    from tests.cache.test_versions import publish
    from pathlib import Path
    publish(Path(sys.argv[1]), 5)
""")


def test_kill_between_publish_and_pointer_switch_is_recovered(tmp_path):
    pointer = publish(tmp_path, 1)
    run = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_STEPS, str(tmp_path)],
                         env={**os.environ, "PYTHONPATH": os.getcwd()}, capture_output=True, text=True, check=False)
    assert run.returncode == -signal.SIGKILL, run.stderr
    versions = Versions.of(pointer)
    assert versions.numbers() == [1, 2] and versions.current() == 1  # v2 complete, not pointed at
    assert FeatureStore.open(pointer).attrs["version"] == 1  # readers still see a published store
    assert versions.recover() == 2
    assert (FeatureStore.open(pointer).read("cls", "block_0") == 5).all()


def test_a_cache_copied_by_a_tool_that_follows_links_is_adopted(tmp_path, caplog):
    """`cp -rL` turns the pointer into a folder; the next rebuild adopts it instead of refusing."""
    pointer = publish(tmp_path / "lab", 1)
    publish(tmp_path / "lab", 2)
    subprocess.run(["cp", "-rL", str(tmp_path / "lab"), str(tmp_path / "laptop")], check=True)
    copied = tmp_path / "laptop" / pointer.relative_to(tmp_path / "lab")
    assert copied.is_dir() and not copied.is_symlink()
    versions = Versions.of(copied)
    assert versions.recover() is None and versions.current() == 2  # what extract does first
    assert copied.is_symlink() and versions.numbers() == [1, 2]  # the second copy of v2 is gone
    assert "was a second copy of version 2" in caplog.text
    assert publish(tmp_path / "laptop", 3) == copied and FeatureStore.open(copied).attrs["version"] == 3

    alone = tmp_path / "pointer-only" / "toy" / "toy"  # only the pointer was copied, following the link
    alone.mkdir(parents=True)
    subprocess.run(["cp", "-rL", str(pointer), str(alone)], check=True)
    versions = Versions.of(alone / pointer.name)
    assert versions.adopt().endswith(f"adopted it as version 2 ({versions.path(2)})")
    assert versions.current() == 2 and (FeatureStore.open(versions.pointer).read("cls", "block_0") == 2).all()
    assert publish(tmp_path / "pointer-only", 4) == versions.pointer and versions.numbers() == [2, 3]

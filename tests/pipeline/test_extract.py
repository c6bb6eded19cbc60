import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from featx.cache import FeatureStore, StoreError
from featx.cli import app, main
from featx.datasets import build_index
from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.extract import extract
from tests.conftest import TINY_SIZE, tiny_backbone, tiny_extract_args


def run(index, cache, backbone=None, size=TINY_SIZE, **kwargs):
    backbone = backbone or tiny_backbone(size)
    kwargs = {"batch_size": 8, "num_workers": 0, "progress": False} | kwargs
    return extract(index, backbone, PreprocessConfig.for_modality(index.modality, size), cache, **kwargs)


def store_arrays(path: Path) -> dict[str, np.ndarray]:
    group = zarr.open_group(str(path), mode="r")
    return {name: np.asarray(array[:]) for name, array in group.arrays()} | {
        f"features/{layer}/{kind}": np.asarray(group[f"features/{layer}/{kind}"][:])
        for layer in group.attrs["featx"]["layers"]
        for kind in ("cls", "pooled")
    }


def test_extract_writes_every_row_once_and_reuses_the_store(demo_data, tmp_path):
    index = build_index("csv", demo_data.xray_csv, modality="xray")
    result = run(index, tmp_path)
    assert not result.reused and result.rows_extracted == len(index) and result.n_failed == 0
    store = FeatureStore.open(result.path)
    assert store.key == result.key and result.path.name == f"{result.key}.zarr"
    assert store.valid.all() and store.n_rows == len(index)
    assert store.layers == ["block_0", "block_1"]
    cls = store.read("cls", "block_1")
    assert cls.shape == (len(index), 32) and np.isfinite(cls).all()
    assert not np.allclose(cls[0], cls[1])  # different images, different features
    attrs = store.attrs
    assert attrs["backbone"]["random_init"] is True and attrs["backbone"]["weights_hash"] == "random-init"
    assert attrs["preprocessing"]["intensity"] == "minmax"

    again = run(index, tmp_path)
    assert again.reused and again.rows_extracted == 0 and again.path == result.path


def test_slices_of_volumes_are_extracted_with_their_volume_ids(demo_data, tmp_path):
    index = build_index("csv", demo_data.ct_csv, modality="ct")
    store = FeatureStore.open(run(index, tmp_path).path)
    table = store.index
    assert (table["volume_id"] != "").all() and table["slice_index"].max() == 7
    assert store.attrs["preprocessing"]["intensity"] == "window"


def test_another_key_never_writes_into_an_existing_store(demo_data, tmp_path):
    index = build_index("csv", demo_data.xray_csv, modality="xray")
    first = run(index, tmp_path)
    before = store_arrays(first.path)
    other = run(index, tmp_path, size=42)
    assert other.key != first.key and other.path != first.path
    after = store_arrays(first.path)
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_an_unreadable_image_is_listed_and_the_rest_extracted(demo_data, tmp_path):
    csv = demo_data.xray_csv
    lines = csv.read_text().splitlines()
    broken = tmp_path / "data"
    broken.mkdir()
    (broken / "images").symlink_to(csv.parent / "images")
    bad = broken / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    lines.append("corrupt.png,PX,train,1,0,0")
    (broken / "broken.csv").write_text("\n".join(lines) + "\n")
    index = build_index("csv", broken / "broken.csv", modality="xray")
    result = run(index, tmp_path / "cache")
    assert result.n_failed == 1
    assert result.failures["source"].iloc[0] == str(bad) and str(bad) in result.failures["error"].iloc[0]
    store = FeatureStore.open(result.path)
    assert store.valid.sum() == len(index) - 1


def test_a_second_concurrent_extraction_of_the_same_store_is_refused(demo_data, tmp_path):
    from tests.cache.test_lock import hold

    index = build_index("csv", demo_data.xray_csv, modality="xray")
    backbone = tiny_backbone()
    key = run(index, tmp_path / "probe").key  # same key in any cache root
    folder = tmp_path / "cache" / index.dataset / "dinov2_vits14"
    folder.mkdir(parents=True)
    holder = hold(folder / f"{key}.lock")  # another process extracting this store
    try:
        with pytest.raises(StoreError, match=f"another extraction .*pid {holder.pid}"):
            run(index, tmp_path / "cache", backbone=backbone)
    finally:
        holder.kill()
        holder.wait()


def _extract_command(csv: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "featx", *tiny_extract_args("csv", csv, cache, "--batch-size", "4", "--workers", "0",
                                                               "--block-rows", "8", "--modality", "xray")]


def test_a_killed_extraction_resumes_to_the_same_store_as_an_uninterrupted_one(demo_data, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    full = subprocess.run(_extract_command(demo_data.xray_csv, tmp_path / "full"), env=env, capture_output=True,
                          text=True, check=True)
    assert "cache key:" in full.stdout

    cache = tmp_path / "killed"
    process = subprocess.Popen(_extract_command(demo_data.xray_csv, cache), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    written = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        partial = list(cache.glob("*/*/*.zarr.partial"))
        if partial and (partial[0] / "written" / "c").exists():
            written = len(list((partial[0] / "written" / "c").iterdir()))
            if written >= 2:
                break
        time.sleep(0.02)
    assert process.poll() is None, "extraction finished before it could be killed; make the fixture larger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = list(cache.glob("*/*/*.zarr.partial"))
    assert partial and not list(cache.glob("*/*/*.zarr")), "the killed run must leave only a partial store"
    left = FeatureStore.open(partial[0], allow_partial=True)
    pending = left.pending_blocks()
    assert 0 < len(pending) < left.n_blocks
    rows_left = sum(left.block_slice(b).stop - left.block_slice(b).start for b in pending)

    resumed = subprocess.run(_extract_command(demo_data.xray_csv, cache), env=env, capture_output=True, text=True,
                             check=True)
    assert f"extracted {rows_left} rows" in resumed.stdout  # only what was missing
    [full_store] = list((tmp_path / "full").glob("*/*/*.zarr"))
    [resumed_store] = list(cache.glob("*/*/*.zarr"))
    assert full_store.name == resumed_store.name  # same key
    expected, actual = store_arrays(full_store), store_arrays(resumed_store)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)


def test_a_grown_dataset_reextracts_only_new_and_changed_samples(demo_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_data.xray_csv.parent, data)
    csv = data / demo_data.xray_csv.name
    first = run(build_index("csv", csv, modality="xray"), tmp_path / "cache")
    old = FeatureStore.open(first.path)
    old_cls = dict(zip(old.index["sample_id"], old.read("cls", "block_1")))

    lines = csv.read_text().splitlines()
    changed = lines[1].split(",")[0]
    image = data / changed
    image.write_bytes((data / lines[2].split(",")[0]).read_bytes())  # same name, new content
    for i in range(5):  # five new images of a new patient
        shutil.copy(data / lines[3 + i].split(",")[0], data / f"images/new_{i}.png")
        lines.append(f"images/new_{i}.png,PNEW,train,1,0,0")
    csv.write_text("\n".join(lines) + "\n")

    grown = build_index("csv", csv, modality="xray")
    second = run(grown, tmp_path / "cache")
    assert second.key == first.key and second.path == first.path
    assert second.rows_extracted == 6 and second.rows_reused == len(grown) - 6
    store = FeatureStore.open(second.path)
    assert store.n_rows == len(grown) and store.valid.all()
    cls = dict(zip(store.index["sample_id"], store.read("cls", "block_1")))
    for sample_id, value in old_cls.items():
        if sample_id != changed:
            np.testing.assert_array_equal(cls[sample_id], value)  # copied, not recomputed
    fresh = FeatureStore.open(run(grown, tmp_path / "fresh").path)
    np.testing.assert_array_equal(store.read("cls", "block_1"), fresh.read("cls", "block_1"))
    assert not np.array_equal(cls[changed], old_cls[changed])


KILLED_DURING_LAYOUT = """
import os, signal, sys
import featx.cache.store as store
original, calls = store.create_array, []
def dying(*args, **kwargs):  # kill -9 halfway through laying out the store's arrays
    calls.append(1)
    if len(calls) == 6:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
store.create_array = dying
from featx.cli import main
sys.argv = ["featx", *sys.argv[1:]]
main()
"""


def test_a_store_killed_while_laid_out_is_laid_out_again(demo_data, tmp_path, caplog):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    args = _extract_command(demo_data.xray_csv, tmp_path)[3:]
    killed = subprocess.run([sys.executable, "-c", KILLED_DURING_LAYOUT, *args], env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [partial] = list(tmp_path.glob("*/*/*.zarr.partial"))
    with pytest.raises(StoreError):
        FeatureStore.open(partial, allow_partial=True)  # half laid out: no featx attributes yet
    with caplog.at_level("WARNING", logger="featx.pipeline.extract"):
        again = CliRunner().invoke(app, args)  # the re-run, in this process
    assert again.exit_code == 0, again.output
    assert f"{partial}: laid out only in part" in caplog.text and "laying it out again" in caplog.text
    [store] = list(tmp_path.glob("*/*/*.zarr"))
    assert FeatureStore.open(store).valid.all() and not partial.exists()


def test_a_full_disk_is_one_sentence_and_the_run_resumes_once_space_is_freed(demo_data, tmp_path, capsys, monkeypatch):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("needs to mount a small tmpfs (root) to fill a real disk")
    try:
        filler = mount / "filler"
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        filler.write_bytes(b"\0" * (free - 96 * 1024))  # leaves room for part of the store only
        cache = mount / "cache"
        args = _extract_command(demo_data.xray_csv, cache)[3:]
        monkeypatch.setattr(sys, "argv", ["featx", *args])
        with pytest.raises(SystemExit) as exited:
            main()  # the real entry point, as `featx extract ...` runs it
        assert exited.value.code == 1  # EXIT_ERROR (featx/cli/errors.py)
        [line] = [line for line in capsys.readouterr().err.splitlines() if line.strip()]  # no traceback
        assert line.startswith("error: ") and "no space left" in line and str(cache.resolve()) in line

        filler.unlink()  # space freed: the same command completes
        resumed = CliRunner().invoke(app, args)
        assert resumed.exit_code == 0, resumed.output
        [store] = list(cache.glob("*/*/*.zarr"))
        assert FeatureStore.open(store).valid.all()
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)  # lazily: this process may still hold a file

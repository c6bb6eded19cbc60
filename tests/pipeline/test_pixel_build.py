import os
import shutil
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import zarr

from featx.cache.pixels import PixelStore
from featx.datasets import build_index
from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.pixel_build import build_pixel_store, plan_units
from tests.datasets.fixtures import write_nifti, write_png


def pixel_arrays(path):
    group = zarr.open_group(str(path), mode="r")
    members = group.members(max_depth=None)
    return {name: np.asarray(array[:]) for name, array in members if isinstance(array, zarr.Array)}


def test_a_known_16_bit_png_comes_back_at_the_right_size_orientation_and_intensity(tmp_path):
    image = np.full((64, 48), 1000, dtype=np.uint16)
    image[:16, :12] = 5000  # bright top-left corner: a flip or transpose would move it
    write_png(tmp_path / "a.png", image)
    shutil.copy(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "data.csv").write_text("path,patient_id,split,label\na.png,p0,train,x\nb.png,p1,test,y\n")
    index = build_index("csv", tmp_path / "data.csv", modality="xray")
    result = build_pixel_store(index, PreprocessConfig.for_modality("xray", 32), tmp_path / "cache", workers=0,
                               progress=False)
    images = PixelStore.open(result.path).read_images(slice(None))
    assert images.shape == (2, 32, 32) and images.dtype == np.uint8
    # min-max: 1000 -> 0, 5000 -> 255; the corner covers rows 0..7 and columns 0..7 of 32 x 32 after resize
    assert (images[0, :7, :7] == 255).all() and (images[0, 9:, :] == 0).all() and (images[0, :, 9:] == 0).all()


def test_a_nifti_slice_equals_the_slice_cut_from_the_canonical_volume(tmp_path):
    rng = np.random.default_rng(0)
    volume = rng.uniform(-1200, 800, (16, 16, 5)).astype(np.int16)
    flipped = np.diag([-1.0, 1.0, 2.0, 1.0])  # stored left-right flipped: featx reorients to RAS+
    write_nifti(tmp_path / "v.nii.gz", volume, flipped)
    shutil.copy(tmp_path / "v.nii.gz", tmp_path / "w.nii.gz")
    (tmp_path / "data.csv").write_text("path,patient_id,split,label\nv.nii.gz,p0,train,x\nw.nii.gz,p1,test,y\n")
    index = build_index("csv", tmp_path / "data.csv", modality="ct")
    result = build_pixel_store(index, PreprocessConfig.for_modality("ct", 16), tmp_path / "cache", workers=0,
                               progress=False)
    store = PixelStore.open(result.path)
    canonical = np.asarray(nib.as_closest_canonical(nib.load(tmp_path / "v.nii.gz")).get_fdata())
    np.testing.assert_array_equal(canonical, volume[::-1])  # the fixture really was flipped
    table = store.index
    for row in np.flatnonzero(table["volume_id"] == "v.nii.gz"):
        k = int(table["slice_index"][row])
        expected = np.rint(np.clip((canonical[:, :, k] + 1024.0) / 1624.0, 0, 1) * 255).astype(np.uint8)
        np.testing.assert_array_equal(store.read_images(slice(row, row + 1))[0], expected)


def test_units_keep_a_volume_together_and_cut_2d_runs():
    import pandas as pd

    table = pd.DataFrame({"source": ["a"] * 5 + ["b"] * 3 + [f"{i}.png" for i in range(5)],
                          "volume_id": ["a"] * 5 + ["b"] * 3 + [""] * 5})
    units = plan_units(table, np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]), unit_rows=2)
    assert [u.tolist() for u in units] == [[1, 2, 3, 4], [5, 6, 7], [8, 9], [10], [12]]


def test_a_parallel_build_equals_a_serial_one(demo_data, tmp_path):
    index = build_index("csv", demo_data.ct_csv, modality="ct")
    preprocess = PreprocessConfig.for_modality("ct", 28)
    serial = build_pixel_store(index, preprocess, tmp_path / "serial", workers=0, block_rows=16, progress=False)
    pooled = build_pixel_store(index, preprocess, tmp_path / "pool", workers=2, block_rows=16, progress=False)
    assert serial.key == pooled.key and serial.rows_decoded == pooled.rows_decoded == len(index)
    assert PixelStore.open(serial.path).n_blocks > 2
    expected, actual = pixel_arrays(serial.path), pixel_arrays(pooled.path)
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)
    again = build_pixel_store(index, preprocess, tmp_path / "serial", workers=0, progress=False)
    assert again.reused and again.rows_decoded == 0


BUILD = """
import sys
from featx.datasets import build_index
from featx.pipeline.pixel_build import build_pixel_store
from featx.datasets.preprocess import PreprocessConfig
index = build_index("csv", sys.argv[1], modality="xray")
build_pixel_store(index, PreprocessConfig.for_modality("xray", 96), sys.argv[2], workers=0, block_rows=4,
                  progress=False)
"""


def test_a_build_killed_with_sigkill_resumes_to_the_same_store(demo_data, tmp_path):
    index = build_index("csv", demo_data.xray_csv, modality="xray")
    preprocess = PreprocessConfig.for_modality("xray", 96)
    full = build_pixel_store(index, preprocess, tmp_path / "full", workers=0, block_rows=4, progress=False).path
    command = [sys.executable, "-c", BUILD, str(demo_data.xray_csv)]
    cache = tmp_path / "killed"
    process = subprocess.Popen([*command, str(cache)], env=os.environ)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        partial = list(cache.glob("*/_pixels/*.pixels.partial"))
        chunks = partial[0] / "written" / "c" if partial else None
        if chunks is not None and chunks.exists() and len(list(chunks.iterdir())) >= 2:
            break
        time.sleep(0.005)
    assert process.poll() is None, "the build finished before it could be killed; make the fixture larger"
    process.send_signal(signal.SIGKILL)
    process.wait()
    [partial] = list(cache.glob("*/_pixels/*.pixels.partial"))
    left = PixelStore.open(partial, allow_partial=True)
    pending = left.pending_blocks()
    assert 0 < len(pending) < left.n_blocks and not list(cache.glob("*/_pixels/*.pixels"))
    resumed = build_pixel_store(index, preprocess, cache, workers=0, progress=False)
    assert resumed.rows_decoded == sum(len(range(*left.block_slice(b).indices(left.n_rows))) for b in pending)
    assert full.name == resumed.path.name
    expected, actual = pixel_arrays(full), pixel_arrays(resumed.path)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)


def test_a_grown_dataset_decodes_only_new_changed_and_failed_files(demo_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data.xray_csv.parent, data)
    csv = data / demo_data.xray_csv.name
    lines = csv.read_text().splitlines()
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    csv.write_text("\n".join([*lines, "broken.png,PB,train,1,0,0"]) + "\n")
    preprocess = PreprocessConfig.for_modality("xray", 28)
    first = build_pixel_store(build_index("csv", csv, modality="xray"), preprocess, tmp_path / "cache", workers=0,
                              block_rows=16, progress=False)
    assert first.n_failed == 1 and str(data / "broken.png") in first.failures["error"].iloc[0]

    changed = data / lines[1].split(",")[0]
    changed.write_bytes((data / lines[2].split(",")[0]).read_bytes())
    shutil.copy(data / lines[3].split(",")[0], data / "images/new.png")
    csv.write_text("\n".join([*lines, "broken.png,PB,train,1,0,0", "images/new.png,PNEW,train,1,0,0"]) + "\n")
    grown = build_index("csv", csv, modality="xray")
    second = build_pixel_store(grown, preprocess, tmp_path / "cache", workers=0, block_rows=16, progress=False)
    assert second.path == first.path and second.rows_decoded == 3 and second.rows_reused == len(grown) - 3
    fresh = build_pixel_store(grown, preprocess, tmp_path / "fresh", workers=0, block_rows=16, progress=False)
    expected, actual = pixel_arrays(fresh.path), pixel_arrays(second.path)
    for name in expected:
        if name != "index/stamp":
            np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)


def test_a_second_build_of_the_same_store_waits_for_the_first_and_reuses_it(demo_data, tmp_path):
    import fcntl
    import threading

    index = build_index("csv", demo_data.xray_csv, modality="xray")
    preprocess = PreprocessConfig.for_modality("xray", 28)
    key = build_pixel_store(index, preprocess, tmp_path / "probe", workers=0, progress=False).key
    folder = tmp_path / "cache" / index.dataset / "_pixels"
    folder.mkdir(parents=True)
    results = []
    with open(folder / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # "another process" is building
        second = threading.Thread(target=lambda: results.append(
            build_pixel_store(index, preprocess, tmp_path / "cache", workers=0, progress=False)))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive() and not list(folder.glob("*.pixels*")), "the second build must wait"
        fcntl.flock(handle, fcntl.LOCK_UN)
    second.join(timeout=60)
    assert results and results[0].rows_decoded == len(index) and results[0].path.exists()

"""`featx extract` on the command line: the store it prints, and one clear line for bad input."""

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cli import app
from tests.conftest import tiny_extract_args

runner = CliRunner()


def test_extract_prints_store_and_key_and_warns_about_random_weights(demo_data, tmp_path):
    args = tiny_extract_args("csv", demo_data.ct_csv, tmp_path, "--workers", "0", "--modality", "ct")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output
    store = re.search(r"store: (\S+)", result.output).group(1)
    key = re.search(r"cache key: (\w+)", result.output).group(1)
    assert store == str(tmp_path / "ct" / "dinov2_vits14" / f"{key}.zarr")  # dataset named after the CSV
    assert FeatureStore.open(store).key == key
    again = runner.invoke(app, args)
    assert "up to date" in again.output


def test_pretrained_weights_that_are_absent_are_an_error_not_random_weights(demo_data, tmp_path):
    args = ["extract", "--dataset", "csv", "--root", str(demo_data.xray_csv), "--backbone", "dinov2_vits14",
            "--size", "28", "--cache", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "--weights" in result.output and "random" in result.output and result.output.startswith("error: ")
    assert not list(tmp_path.glob("*/*/*.zarr*"))


def _study(demo_data, folder):
    """A copy of the demo X-ray study whose CSV is called labels.csv (like every other lab's)."""
    import shutil

    shutil.copytree(demo_data.xray_csv.parent, folder)
    (folder / "xray.csv").rename(folder / "labels.csv")
    return folder / "labels.csv"


def test_two_studies_with_the_same_csv_name_never_share_a_store(demo_data, tmp_path):
    first, second = _study(demo_data, tmp_path / "lab_a"), _study(demo_data, tmp_path / "lab_b")
    cache = tmp_path / "cache"
    assert runner.invoke(app, tiny_extract_args("csv", first, cache, "--workers", "0")).exit_code == 0
    store_a = re.search(r"store: (\S+)", runner.invoke(app, tiny_extract_args("csv", first, cache, "--workers", "0")).output).group(1)
    before = FeatureStore.open(store_a).read("cls", "block_1")

    clash = runner.invoke(app, tiny_extract_args("csv", second, cache, "--workers", "0"))
    assert clash.exit_code != 0
    message = clash.output
    assert str(first) in message and str(second) in message and "--name" in message and "--replace" in message
    np.testing.assert_array_equal(FeatureStore.open(store_a).read("cls", "block_1"), before)  # untouched

    named = runner.invoke(app, tiny_extract_args("csv", second, cache, "--workers", "0", "--name", "labels_b"))
    assert named.exit_code == 0, named.output
    store_b = re.search(r"store: (\S+)", named.output).group(1)
    assert "labels_b" in store_b and FeatureStore.open(store_b).attrs["source_root"] == str(second)
    assert FeatureStore.open(store_a).attrs["source_root"] == str(first)

    replaced = runner.invoke(app, tiny_extract_args("csv", second, cache, "--workers", "0", "--replace"))
    assert replaced.exit_code == 0, replaced.output
    assert FeatureStore.open(re.search(r"store: (\S+)", replaced.output).group(1)).attrs["source_root"] == str(second)


def test_extract_reads_through_the_pixel_store_and_prints_speed_and_time_split(demo_data, tmp_path):
    args = tiny_extract_args("csv", demo_data.xray_csv, tmp_path / "on", "--workers", "0", "--modality", "xray",
                             "--decode-workers", "1")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pixels = re.search(r"pixels: (\S+) \(decoded (\d+) images", result.output)
    assert pixels and list((tmp_path / "on" / "xray" / "_pixels").glob("*.pixels")) == [Path(pixels.group(1))]
    assert re.search(r"speed: [\d.]+ images/s steady; time split: read .*transfer .*compute .*write", result.output)
    off = runner.invoke(app, tiny_extract_args("csv", demo_data.xray_csv, tmp_path / "off", "--workers", "0",
                                               "--modality", "xray", "--no-pixel-cache"))
    assert off.exit_code == 0, off.output
    assert "pixels:" not in off.output and not (tmp_path / "off" / "xray" / "_pixels").exists()
    stores = [FeatureStore.open(re.search(r"store: (\S+)", r.output).group(1)) for r in (result, off)]
    np.testing.assert_array_equal(stores[0].read("cls", "block_1"), stores[1].read("cls", "block_1"))

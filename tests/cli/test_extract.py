"""`featx extract` on the command line: the store it prints, and one clear line for bad input."""

import re

from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cli import app
from tests.conftest import TINY_SIZE, TINY_VIT

runner = CliRunner()


def extract_args(csv, cache, *extra):
    overrides = [f"--model-override={k}={v}" for k, v in TINY_VIT.items()]
    return ["extract", "--dataset", "csv", "--root", str(csv), "--backbone", "dinov2_vits14", "--size",
            str(TINY_SIZE), "--cache", str(cache), "--n-last", "2", "--workers", "0", *overrides, *extra]


def test_extract_prints_store_and_key_and_warns_about_random_weights(demo_data, tmp_path):
    result = runner.invoke(app, extract_args(demo_data.ct_csv, tmp_path, "--random-init", "--modality", "ct"))
    assert result.exit_code == 0, result.output
    assert "RANDOM weights" in result.output
    store = re.search(r"store: (\S+)", result.output).group(1)
    key = re.search(r"cache key: (\w+)", result.output).group(1)
    assert store == str(tmp_path / "ct" / "dinov2_vits14" / f"{key}.zarr")  # dataset named after the CSV
    assert FeatureStore.open(store).key == key
    again = runner.invoke(app, extract_args(demo_data.ct_csv, tmp_path, "--random-init", "--modality", "ct"))
    assert "up to date" in again.output


def test_pretrained_weights_that_are_absent_are_an_error_not_random_weights(demo_data, tmp_path):
    args = ["extract", "--dataset", "csv", "--root", str(demo_data.xray_csv), "--backbone", "dinov2_vits14",
            "--size", "28", "--cache", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert "--weights" in str(result.exception) and "random" in str(result.exception)
    assert not list(tmp_path.glob("*/*/*.zarr*"))

"""`featx extract` on the command line: the store it prints, and one clear line for bad input."""

import re

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

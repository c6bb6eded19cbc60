"""run_extract's end of run: what it says about inputs that produced no features, and the exit status."""

import shutil

from typer.testing import CliRunner

from featx.cli import app
from featx.cli.errors import EXIT_PARTIAL
from featx.pipeline.job import intensity_rule
from tests.conftest import tiny_extract_args

runner = CliRunner()


def _with_a_missing_and_a_broken_image(demo_data, folder):
    shutil.copytree(demo_data.xray_csv.parent, folder)
    csv = folder / "xray.csv"
    lines = csv.read_text().splitlines()
    missing = lines[1].split(",")[0]
    broken = lines[2].split(",")[0]
    (folder / missing).unlink()
    (folder / broken).write_bytes(b"not an image at all")
    return csv, missing, broken


def test_missing_and_unreadable_inputs_are_named_again_at_the_end_and_the_run_is_partial(demo_data, tmp_path):
    csv, missing, broken = _with_a_missing_and_a_broken_image(demo_data, tmp_path / "data")
    result = runner.invoke(app, tiny_extract_args("csv", csv, tmp_path / "cache", "--workers", "0"))
    assert result.exit_code == EXIT_PARTIAL, result.output
    lines = result.output.splitlines()
    summary = lines[next(i for i, line in enumerate(lines) if line.startswith("store: ")):]
    assert any(missing in line for line in summary if line.startswith("  ")), summary
    assert any(broken in line and line.startswith("  row ") for line in summary), summary
    assert "intensity: minmax per image" in summary

    again = runner.invoke(app, tiny_extract_args("csv", csv, tmp_path / "cache", "--workers", "0"))
    assert again.exit_code == EXIT_PARTIAL and "up to date" in again.output and broken in again.output


def test_the_intensity_rule_is_said_in_words():
    assert intensity_rule({"intensity": "window", "window": [-1024.0, 600.0]}) == "window [-1024, 600] HU"
    assert intensity_rule({"intensity": "percentile", "percentiles": [5.0, 95.0]}) == "percentile clip [5, 95]"
    assert intensity_rule({"intensity": "minmax"}) == "minmax per image"

"""Environment problems found before anything loads: one line each, nothing left behind."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from featx.cli import app
from featx.jobs.checks import CheckError, check_cache_folder, check_device, folder_is_writable
from tests.conftest import tiny_extract_args

runner = CliRunner()


def one_line_error(result) -> str:
    """The command failed with exit 1 and exactly one line saying why (no traceback)."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_a_device_typo_and_a_missing_gpu_are_one_line_each_and_nothing_is_created(demo_data, tmp_path):
    cache = tmp_path / "cache"
    typo = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, cache, "--device", "gpu"))
    assert "--device gpu" in one_line_error(typo) and "cuda" in typo.output
    if not __import__("torch").cuda.is_available():
        missing = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, cache, "--device", "cuda"))
        assert "no CUDA GPU" in one_line_error(missing) and "--device cpu" in missing.output
    assert not cache.exists()


def test_a_file_where_the_cache_folder_should_be(demo_data, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    result = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, blocker))
    assert str(blocker) in one_line_error(result) and "not a folder" in result.output
    nested = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, blocker / "sub"))
    assert "which is a file" in one_line_error(nested)
    assert blocker.read_text() == "not a folder"


@pytest.fixture
def make_read_only():
    """Make a folder tree read-only for real (immutable for root, who ignores permission bits)."""
    frozen = []

    def freeze(path):
        if sys.platform.startswith("linux") and __import__("os").geteuid() == 0:
            done = subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True)
            if done.returncode != 0:
                pytest.skip(f"cannot make {path} read-only here: {done.stderr.decode().strip()}")
        else:
            subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
        frozen.append(path)
        if folder_is_writable(path):
            pytest.skip(f"{path} stays writable here")

    yield freeze
    for path in frozen:
        if __import__("os").geteuid() == 0:
            subprocess.run(["chattr", "-R", "-i", str(path)], check=False)
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)


def test_a_read_only_cache_is_an_error_unless_the_store_is_complete(demo_data, tmp_path, make_read_only):
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    built = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, full, "--workers", "0", "--modality", "ct"))
    assert built.exit_code == 0, built.output
    before = sorted(p.relative_to(full) for p in full.rglob("*"))
    make_read_only(empty)
    make_read_only(full)

    refused = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, empty, "--workers", "0", "--modality", "ct"))
    assert "read-only" in one_line_error(refused) and str(empty) in refused.output
    assert list(empty.iterdir()) == []

    again = runner.invoke(app, tiny_extract_args("csv", demo_data.ct_csv, full, "--workers", "0", "--modality", "ct"))
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output
    assert sorted(p.relative_to(full) for p in full.rglob("*")) == before  # not even a lock file


def test_checks_name_the_option_and_what_to_do(tmp_path):
    assert check_device("cpu") == "cpu"
    with pytest.raises(CheckError, match="--device cuda:x: not a device"):
        check_device("cuda:x")
    check_cache_folder(tmp_path / "new" / "cache")  # not there yet: fine, nothing created
    assert not (tmp_path / "new").exists()
    assert folder_is_writable(tmp_path / "new" / "cache") and not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []


def test_probe_and_demo_check_the_device_first(tmp_path):
    probe = runner.invoke(app, ["probe", "--store", str(tmp_path / "none.zarr"), "--device", "gpu", "--out", str(tmp_path / "r.jsonl")])
    assert "--device gpu" in one_line_error(probe)
    demo = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--device", "gpu"])
    assert "--device gpu" in one_line_error(demo) and not (tmp_path / "demo").exists()

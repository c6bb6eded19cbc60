"""The `featx` command itself: --version, help without type placeholders for flags, no torch to print help."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from featx import __version__
from featx.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"featx {__version__}"


def test_boolean_options_read_as_flags():
    for command in (["extract", "--help"], ["probe", "--help"], ["datasets", "check", "--help"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output
    probe = runner.invoke(app, ["probe", "--help"]).output
    assert "--patch-tokens / --no-patch-tokens" in probe and "--val-records / --no-val-records" in probe
    assert "--random-init " in runner.invoke(app, ["extract", "--help"]).output


def test_help_and_listings_import_no_torch():
    script = (
        "import sys\nfrom featx.cli import app\n"
        "for args in (['--help'], ['datasets'], ['report', '--help'], ['cache', 'ls', sys.argv[1]]):\n"
        "    try:\n        app(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'timm', 'matplotlib', 'sklearn', 'faiss', 'rich') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(ROOT / "no-such-cache")], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"

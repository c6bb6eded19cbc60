from typer.testing import CliRunner

from featx.cli import app
from tests.report.conftest import record, write


def test_report_prints_tables_and_with_out_names_the_html(tmp_path):
    results = write(tmp_path / "r.jsonl", [record(), record(backbone="densenet201", value=0.7, store_key="d")])
    printed = CliRunner().invoke(app, ["report", str(results)])
    assert printed.exit_code == 0 and "| dinov2_vitl14 | **0.760 [0.750, 0.770]** |" in printed.output
    assert not (tmp_path / "out").exists()
    written = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "out")])
    assert written.exit_code == 0, written.output
    assert f"open  {tmp_path / 'out' / 'report.html'}" in written.output
    assert (tmp_path / "out" / "figures" / "fig3_linear.svg").exists() and (tmp_path / "out" / "tables.csv").exists()


def test_an_empty_results_file_is_one_line(tmp_path, monkeypatch, capsys):
    import sys

    import pytest

    from featx.cli import main

    (tmp_path / "empty.jsonl").write_text("")
    monkeypatch.setattr(sys, "argv", ["featx", "report", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_status:
        main()
    assert exit_status.value.code == 1  # EXIT_ERROR (featx/cli/errors.py)
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {tmp_path / 'empty.jsonl'}: no result records in this file; "
        f"write some with `featx probe ... --out {tmp_path / 'empty.jsonl'}`"]
    assert not (tmp_path / "out").exists()

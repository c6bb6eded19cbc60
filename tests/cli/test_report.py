from typer.testing import CliRunner

from featx.cli import app
from tests.report.conftest import record, write
from tests.tmpfs import fill, read_only, resize


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
        (f"error: {tmp_path / 'empty.jsonl'}: no result records in this file; "
         f"write some with `featx probe ... --out {tmp_path / 'empty.jsonl'}`")]
    assert not (tmp_path / "out").exists()


def run_main(monkeypatch, capsys, *args):
    """`featx ARGS` as from the shell: (exit status, stdout, stderr)."""
    import sys

    import pytest

    from featx.cli import main

    monkeypatch.setattr(sys, "argv", ["featx", *map(str, args)])
    with pytest.raises(SystemExit) as exit_status:
        main()
    captured = capsys.readouterr()
    return exit_status.value.code, captured.out, captured.err


def test_a_read_only_out_is_refused_before_any_work_in_one_line(tmp_path, tmpfs, monkeypatch, capsys):
    results = write(tmp_path / "r.jsonl", [record()])
    resize(tmpfs, "1m")
    assert CliRunner().invoke(app, ["report", str(results), "--out", str(tmpfs / "report")]).exit_code == 0
    before = sorted(p.name for p in (tmpfs / "report").iterdir())
    (tmp_path / "empty.jsonl").write_text("")  # would fail the run if anything were read first
    read_only(tmpfs)
    try:
        status, _, err = run_main(monkeypatch, capsys, "report", tmp_path / "empty.jsonl", "--out", tmpfs / "report")
    finally:
        read_only(tmpfs, on=False)
    assert status == 1
    assert err.strip().splitlines() == [(f"error: --out {tmpfs / 'report'} cannot be written: {tmpfs} is not writable "
                                         "(a read-only mount?); give --out a folder in a writable place")]
    assert sorted(p.name for p in (tmpfs / "report").iterdir()) == before


def test_a_full_disk_is_one_line_and_keeps_the_earlier_report(tmp_path, tmpfs, monkeypatch, capsys):
    results = write(tmp_path / "r.jsonl", [record(), record(backbone="densenet201", value=0.7, store_key="d")])
    resize(tmpfs, "1m")
    assert run_main(monkeypatch, capsys, "report", results, "--out", tmpfs / "report")[0] == 0
    page = (tmpfs / "report" / "report.html").read_bytes()
    fill(tmpfs, leave=40_000)
    status, _, err = run_main(monkeypatch, capsys, "report", results, "--out", tmpfs / "report")
    assert status == 1
    assert err.strip().splitlines() == [
        (f"error: {tmpfs / 'report'}: could not write the report (No space left on device); the report already "
         "there is unchanged; free some space (or give another --out) and run it again")]
    assert (tmpfs / "report" / "report.html").read_bytes() == page


def test_a_torn_last_line_is_said_and_the_rest_reported(tmp_path, monkeypatch, capsys):
    results = write(tmp_path / "r.jsonl", [record(), record(backbone="densenet201", value=0.7, store_key="d")])
    torn = '{"dataset": "nih", "backbone": "vit'  # an append cut short by a crash
    with results.open("a") as handle:
        handle.write(torn)
    status, out, err = run_main(monkeypatch, capsys, "report", results)
    assert status == 0
    note = f"{results}: its last line is torn ({len(torn)} bytes without a newline, a write cut short by a crash)"
    assert err.startswith(f"warning: {note}") and "| densenet201 |" in out
    status, out, _ = run_main(monkeypatch, capsys, "report", results, "--out", tmp_path / "out")
    assert status == 0 and "## Problems" in out and note in (tmp_path / "out" / "report.md").read_text()
    short = note.replace(str(results.parent.parent), "…")  # the page body shows no absolute machine paths
    assert short in (tmp_path / "out" / "report.html").read_text()


def test_a_failure_record_is_listed_unless_a_later_run_made_it_good(tmp_path, monkeypatch, capsys):
    from featx.evaluation.records import failure_record

    def failed_one(key, setting, created):
        provenance = {"dataset": "nih", "backbone": "vit_b", "store_key": key}
        return failure_record(setting=setting, reason=f"{key} ran out of memory", provenance=provenance, seed=0,
                              command="featx probe") | {"created": created}

    results = write(tmp_path / "r.jsonl", [
        failed_one("k-nih-l14", "linear", "2026-11-26T10:00:00+00:00"),  # retried: the record below made it good
        record(job_setting="linear"),
        failed_one("k-other", "knn", "2026-11-27T11:00:00+00:00"),
    ])
    status, out, _ = run_main(monkeypatch, capsys, "report", results, "--out", tmp_path / "out")
    assert status == 0, out
    failed = (tmp_path / "out" / "report.md").read_text().split("Not run / failed")[1].split("##")[0]
    assert "knn" in failed and "k-other ran out of memory" in failed
    assert "k-nih-l14 ran out of memory" not in failed
    only = write(tmp_path / "only.jsonl", [failed_record := failed_one("k-other", "knn", "2026-11-27T11:00:00+00:00")])
    status, _, _ = run_main(monkeypatch, capsys, "report", only, "--out", tmp_path / "only")
    assert status == 0 and failed_record["reason"] in (tmp_path / "only" / "report.md").read_text()

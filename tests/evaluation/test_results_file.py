"""The results file under faults: a missing final newline, a full disk (a real tmpfs), a torn tail, concurrent appends."""

import json
import logging
import multiprocessing
import tempfile

import pytest

from featx.cli.errors import is_expected
from featx.evaluation.records import append_jsonl, read_jsonl
from featx.evaluation.results_file import ResultsWriteError, append_records
from featx.report import load_records
from featx.report.records import TornLineWarning
from tests.report.conftest import record
from tests.tmpfs import fill


def rows(n, **fields):
    """``n`` report-shaped records, told apart by ``seed``."""
    return [record(seed=i, **fields) for i in range(n)]


def test_an_append_after_a_last_line_without_newline_starts_a_new_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record(seed=100)) + "\n" + json.dumps(record(seed=101)))  # no final newline
    assert append_records(path, rows(5)) == 5
    assert [r["seed"] for r in read_jsonl(path)] == [100, 101, 0, 1, 2, 3, 4]
    assert len(load_records([path])) == 7  # what `featx report R` reads: every record
    assert path.read_bytes().endswith(b"\n") and b"}{" not in path.read_bytes()


def test_a_full_disk_leaves_the_file_as_it_was_saves_the_records_and_the_next_run_works(tmpfs, monkeypatch):
    path = tmpfs / "r.jsonl"
    append_records(path, rows(2, setting="knn"))
    before = path.read_bytes()
    rescue_dir = tmpfs.parent / "tmp"
    rescue_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rescue_dir))
    filler = fill(tmpfs, leave=4096)  # one page left: the append starts, then the disk is full
    big = rows(60, note="x" * 400)  # about 40 KB
    with pytest.raises(ResultsWriteError) as raised:
        append_records(path, big)
    message = str(raised.value)
    assert message.startswith(f"{path}: could not append to it (No space left on device); what it held is unchanged")
    assert "\n" not in message and is_expected(raised.value)  # one line on the command line, no traceback
    assert path.read_bytes() == before  # no torn line left behind
    assert [r["seed"] for r in read_jsonl(path)] == [0, 1]
    saved = next(rescue_dir.glob("r.jsonl.rescued-*.jsonl"))
    assert f"saved to {saved}" in message and f"`cat {saved} >> {path}`" in message
    assert read_jsonl(saved) == big
    assert not list(tmpfs.glob("r.jsonl.*"))  # nothing half-saved beside it on the full disk
    filler.unlink()  # space freed: the next run appends to the same file
    assert append_records(path, rows(3, setting="linear")) == 3
    assert [r["setting"] for r in read_jsonl(path)] == ["knn"] * 2 + ["linear"] * 3
    assert len(load_records([path])) == 5


def test_a_torn_tail_is_left_out_by_readers_and_set_aside_by_the_next_append(tmp_path, caplog):
    path = tmp_path / "r.jsonl"
    torn = json.dumps(record(seed=9))[:37].encode()
    path.write_bytes((json.dumps(record(seed=0)) + "\n" + json.dumps(record(seed=1)) + "\n").encode() + torn)
    with caplog.at_level(logging.WARNING, logger="featx.results"):
        assert [r["seed"] for r in read_jsonl(path)] == [0, 1]
    assert f"{path}: its last line is torn (37 bytes without a newline" in caplog.text
    with pytest.warns(TornLineWarning, match="last line is torn"):
        assert len(load_records([path])) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="featx.results"):
        assert append_records(path, rows(2, setting="knn")) == 2
    aside = next(tmp_path.glob("r.jsonl.torn-*"))
    assert aside.read_bytes() == torn and f"set aside as {aside}" in caplog.text
    assert [r["seed"] for r in read_jsonl(path)] == [0, 1, 0, 1]
    assert len(load_records([path])) == 4


def test_a_torn_tail_on_a_full_disk_is_kept_and_the_records_are_rescued(tmpfs, monkeypatch):
    path = tmpfs / "r.jsonl"
    path.write_bytes((json.dumps(record()) + "\n").encode() + b'{"dataset": "nih", "ba')
    before = path.read_bytes()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpfs.parent))
    filler = fill(tmpfs)
    with pytest.raises(ResultsWriteError, match=r"could not set aside the torn last line of it \(No space left"):
        append_records(path, rows(1))
    assert path.read_bytes() == before  # the torn tail is never dropped, even when it cannot be moved
    filler.unlink()
    append_records(path, rows(1))
    assert len(read_jsonl(path)) == 2 and next(tmpfs.glob("r.jsonl.torn-*")).read_bytes() == b'{"dataset": "nih", "ba'


def _append_many(path, worker):
    for i in range(40):
        append_records(path, [record(seed=worker * 1000 + i, note="y" * 3000)])


def test_concurrent_appends_from_processes_keep_every_record_whole(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record(seed=-1)))  # a last line without newline, which every writer may see
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, w)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    seeds = sorted(r["seed"] for r in read_jsonl(path))
    assert seeds == sorted([-1] + [w * 1000 + i for w in range(4) for i in range(40)])


def test_append_jsonl_cleans_and_checks_the_records_first(tmp_path):
    path = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match="lacks"):
        append_jsonl(path, [{"dataset": "d"}])
    assert not path.exists()


def probe(store, out):
    """`featx probe --store STORE --setting knn --out OUT` (a real run on a real store), as the CLI runs it."""
    from typer.testing import CliRunner

    from featx.cli import app

    return CliRunner().invoke(app, ["probe", "--store", str(store), "--setting", "knn", "--k", "5", "--bootstrap", "20",
                                    "--out", str(out)])


def test_a_probe_appending_to_a_file_without_final_newline_keeps_every_record_for_the_report(tmp_path, store_factory):
    store = store_factory()
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record(seed=100)))  # an old results file whose last line lacks its newline
    ran = probe(store, path)
    assert ran.exit_code == 0, ran.output
    appended = int(ran.output.split(" records appended")[0].split()[-1])
    assert appended > 0 and len(read_jsonl(path)) == 1 + appended
    assert len(load_records([path])) == 1 + appended


def test_a_probe_on_a_full_disk_says_where_its_records_went_and_the_next_run_works(tmp_path, tmpfs, store_factory,
                                                                                  monkeypatch):
    store = store_factory()
    path = tmpfs / "r.jsonl"
    path.write_text(json.dumps(record(seed=100)) + "\n")
    before = path.read_bytes()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    filler = fill(tmpfs)
    ran = probe(store, path)
    assert ran.exit_code != 0 and isinstance(ran.exception, SystemExit), ran.output  # a message, not a crash
    assert f"{path}: could not append to it (No space left on device); what it held is unchanged" in ran.output
    assert "Traceback" not in ran.output
    assert path.read_bytes().startswith(before) and read_jsonl(path) == [json.loads(before)]  # no torn line
    saved = next(tmp_path.glob("r.jsonl.rescued-*.jsonl"))
    assert f"saved to {saved}" in ran.output and read_jsonl(saved)
    filler.unlink()
    again = probe(store, path)
    assert again.exit_code == 0, again.output
    assert len(read_jsonl(path)) == 1 + len(read_jsonl(saved))

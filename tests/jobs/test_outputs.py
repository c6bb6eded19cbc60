"""Output paths refused before any work: a folder given as a file, a parent that is a file, a read-only mount."""

import pytest

from featx.jobs.checks import CheckError
from featx.jobs.outputs import check_report_folder, check_results_file
from tests.tmpfs import read_only


def test_a_results_file_that_could_not_be_appended_to_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckError, match=rf"^--out {tmp_path} is a folder; give a results file, e.g. {tmp_path}/results.jsonl$"):
        check_results_file(tmp_path)
    with pytest.raises(CheckError, match=rf"^--results {tmp_path}/file/r.jsonl cannot be created because {tmp_path}/file is a file"):
        check_results_file(tmp_path / "file" / "r.jsonl", option="--results")
    check_results_file(tmp_path / "new" / "r.jsonl")
    check_results_file(tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # a check creates nothing


def test_a_read_only_mount_is_refused_for_results_and_reports(tmpfs):
    (tmpfs / "r.jsonl").write_text("")
    (tmpfs / "report").mkdir()
    read_only(tmpfs)
    try:
        with pytest.raises(CheckError, match=rf"^--out {tmpfs}/r.jsonl cannot be appended to \(Read-only file system\)"):
            check_results_file(tmpfs / "r.jsonl")
        with pytest.raises(CheckError, match=rf"^--out {tmpfs}/sub/new.jsonl cannot be created: {tmpfs} is not writable"):
            check_results_file(tmpfs / "sub" / "new.jsonl")
        for folder in (tmpfs / "report", tmpfs / "new"):
            with pytest.raises(CheckError, match=rf"^--out {folder} cannot be written: {tmpfs} is not writable"):
                check_report_folder(folder)
    finally:
        read_only(tmpfs, on=False)


def test_a_report_folder_must_hold_only_a_report_since_it_is_replaced_whole(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("")
    (out / "figures").mkdir()
    check_report_folder(out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CheckError, match=r"holds files that are not part of a featx report \(notes.txt\), and a new report"):
        check_report_folder(out)
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckError, match="is a file; give --out a folder for the report"):
        check_report_folder(tmp_path / "file")
    with pytest.raises(CheckError, match="file/out cannot be created because .* is a file"):
        check_report_folder(tmp_path / "file" / "out")
    (out / "notes.txt").unlink()
    monkeypatch.chdir(out / "figures")
    with pytest.raises(CheckError, match="holds the current folder"):
        check_report_folder(out)

import json

import pytest

from featx.report import load_records
from tests.report.conftest import record, write


def test_records_load_with_missing_optional_fields_filled(tmp_path):
    frame = load_records([write(tmp_path / "r.jsonl", [{k: v for k, v in record().items() if k != "ci_low"}])])
    assert len(frame) == 1 and frame["ci_low"].isna().all() and frame["class"].isna().all()


def test_an_empty_results_file_is_one_sentence_naming_it(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    with pytest.raises(ValueError, match=r"empty.jsonl: no result records in this file"):
        load_records([path])
    with pytest.raises(FileNotFoundError, match="missing.jsonl: no such results file"):
        load_records([tmp_path / "missing.jsonl"])


def test_malformed_lines_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record()) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"r.jsonl:2: not valid JSON"):
        load_records([path])
    path.write_text(json.dumps({"dataset": "x"}) + "\n")
    with pytest.raises(ValueError, match="lacks fields"):
        load_records([path])

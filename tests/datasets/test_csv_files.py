"""featx.datasets.csv_files: a dataset CSV that is missing, empty or unparsable is one sentence naming it."""

from __future__ import annotations

import pytest

from featx.datasets.csv_files import read_csv_file
from featx.datasets.index import DatasetError


def test_reads_strings_and_keeps_blanks(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("path,label\n001.png,1\n002.png,\n")
    frame = read_csv_file(path)
    assert frame.to_dict("records") == [{"path": "001.png", "label": "1"}, {"path": "002.png", "label": ""}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "labels CSV not found"),
        (b"", "the labels CSV is empty"),
        (b"path,label\n\xff\xfe,1\n", "cannot parse labels CSV"),
        (b'path,label\n"001.png,1\n', "cannot parse labels CSV"),
    ],
)
def test_unreadable_file_is_a_dataset_error_naming_it(tmp_path, content, message):
    path = tmp_path / "labels.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as caught:
        read_csv_file(path, "labels CSV")
    assert str(caught.value).startswith(f"{path}: {message}") and "\n" not in str(caught.value).split("(")[0]

import errno

import pytest

from featx.report import publish


@pytest.mark.parametrize("exchange", ["renameat2", "rename aside"])
def test_a_new_folder_is_switched_in_whole_and_the_old_one_removed(tmp_path, monkeypatch, exchange):
    if exchange == "rename aside":
        def unsupported(a, b):
            raise OSError(errno.ENOSYS, "renameat2 is not available")

        monkeypatch.setattr(publish, "_exchange", unsupported)
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old")
    (out / "gone.png").write_text("old")
    with publish.staged(out) as stage:
        (stage / "report.md").write_text("new")
        assert sorted(p.name for p in tmp_path.iterdir()) == [stage.name, "report"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
    assert [(p.name, p.read_text()) for p in out.iterdir()] == [("report.md", "new")]


def test_an_error_while_writing_leaves_the_old_folder(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("old")
    with pytest.raises(RuntimeError, match="drawing failed"), publish.staged(out) as stage:
        (stage / "report.md").write_text("half")
        raise RuntimeError("drawing failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"] and (out / "report.md").read_text() == "old"

import json

from featx.report import load_records
from featx.report.build import build_report
from featx.report.failures import failures_table, load_failures, open_failures
from tests.report.conftest import record, write


def failure(setting="seg_unet", created="2026-11-27T11:00:00+00:00", **fields):
    """A failure record as the probe runner writes it."""
    return {"record_type": "failure", "dataset": "nih", "backbone": "dinov2_vitl14", "setting": setting,
            "store_key": "k-nih-l14", "store_version": "0.1.0", "store_path": "/data/cache/nih/dinov2_vitl14/k.zarr",
            "reason": "the U-Net decoder needs 5 blocks of patch tokens, got 1 in /data/cache/nih/dinov2_vitl14/k.zarr",
            "seed": 0, "command": "featx probe --store /data/cache/nih/dinov2_vitl14/k.zarr --setting seg_unet",
            "featx_version": "0.1.0", "created": created} | fields


def test_failure_records_do_not_stop_the_record_loader_and_are_read_on_their_own(tmp_path):
    path = write(tmp_path / "r.jsonl", [record(), failure()])
    assert list(load_records([path])["setting"]) == ["linear"]
    assert [f["setting"] for f in load_failures([path])] == ["seg_unet"]
    only = write(tmp_path / "only.jsonl", [failure()])  # a run where everything failed is still a results file
    assert load_records([only]).empty and len(load_failures([only])) == 1


def test_a_failure_made_good_by_a_later_result_is_not_listed(tmp_path):
    path = write(tmp_path / "r.jsonl", [
        failure(setting="linear", created="2026-11-27T09:00:00+00:00"),  # re-run at 10:00 worked
        record(),
        failure(setting="knn", created="2026-11-27T08:00:00+00:00"),
        failure(setting="knn", reason="no validation split", created="2026-11-27T12:00:00+00:00"),  # newest says why
    ])
    still = open_failures(load_failures([path]), load_records([path]))
    assert [(f["setting"], f["reason"]) for f in still] == [("knn", "no validation split")]
    table = failures_table(still)
    assert [c.text for c in table.rows[0]] == ["knn", "nih", "dinov2_vitl14", "no validation split", "0",
                                               "2026-11-27T12:00:00+00:00"]
    assert failures_table([]).notes == ["None: every setting asked for in these results files produced its numbers."]


def test_the_page_lists_failed_settings_without_machine_paths_and_says_how_each_number_was_made(tmp_path):
    path = write(tmp_path / "r.jsonl", [record(command="featx probe --store /data/cache/nih/k.zarr --setting linear"),
                                        failure()])
    report = build_report([path], tmp_path / "out")
    page = report.html.read_text()
    body, footer = page.split("<footer>")
    assert "Not run / failed" in body and "seg_unet" in body
    assert "got 1 in …/dinov2_vitl14/k.zarr" in body and "/data/cache" not in body
    assert "featx probe --store /data/cache/nih/k.zarr --setting linear" in footer  # provenance gives it in full
    assert "2026-11-27T10:00:00+00:00" in footer and "Runs" in footer
    assert "Not run / failed" in report.markdown.read_text()
    json.loads(path.read_text().splitlines()[1])  # the results file itself is left as it was

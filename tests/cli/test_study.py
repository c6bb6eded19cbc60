"""`featx extract|probe --config study.yaml`: every store once, one summary, no work the second time."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from featx.cli import app
from featx.pipeline.study import StudyError, load_study
from tests.conftest import TINY_SIZE, TINY_VIT

runner = CliRunner()


def write_study(tmp_path, demo_data):
    study = {
        "cache": "cache",
        "datasets": [
            {"adapter": "csv", "root": str(demo_data.xray_csv), "options": {"modality": "xray"}},
            {"adapter": "csv", "root": str(demo_data.ct_csv), "name": "ct_study", "options": {"modality": "ct"}},
        ],
        "backbones": ["dinov2_vits14"],
        "sizes": [TINY_SIZE],
        "extract": {"random-init": True, "n-last": 2, "workers": 0, "batch-size": 16,
                    "model-override": [f"{k}={v}" for k, v in TINY_VIT.items()]},
        "probe": {"out": "results.jsonl", "setting": ["knn"], "k": 5, "bootstrap": 0, "val-bootstrap": 0},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_a_study_run_twice_does_no_work_the_second_time(demo_data, tmp_path):
    study = write_study(tmp_path, demo_data)
    first = runner.invoke(app, ["extract", "--config", str(study)])
    assert first.exit_code == 0, first.output
    summary = first.output.split("stores\n", 1)[1]
    assert summary.count("published v1") == 2 and "xray" in summary and "ct_study" in summary

    again = runner.invoke(app, ["extract", "--config", str(study)])
    assert again.exit_code == 0, again.output
    assert again.output.split("stores\n", 1)[1].count("up to date (v1)") == 2
    assert "extracted 0" not in again.output and again.output.count("up to date") >= 4  # per run and per row

    probed = runner.invoke(app, ["probe", "--config", str(study)])
    assert probed.exit_code == 0, probed.output
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert records and {r["store_version"] for r in records} == {1}
    assert {r["dataset"] for r in records} == {"xray", "ct_study"}
    reprobed = runner.invoke(app, ["probe", "--config", str(study)])
    assert reprobed.exit_code == 0 and reprobed.output.count("up to date (v1)") == 2
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(records)  # nothing appended


def test_a_malformed_study_is_one_sentence_naming_the_entry(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"cache": "c", "datasets": [{"adapter": "csv", "rot": "x.csv"}],
                                    "backbones": ["dinov2_vits14"]}))
    with pytest.raises(StudyError) as error:
        load_study(path)
    assert str(error.value).startswith(f"{path}: datasets[0]: unknown keys ['rot']")


def test_the_shipped_paper_study_lists_every_store_of_the_paper():
    from pathlib import Path

    study = load_study(Path(__file__).parents[2] / "configs" / "paper.yaml")
    assert len(study.jobs) == 9 * 13 * 2
    assert {job.size for job in study.jobs} == {224, 448}
    segmentation = [job for job in study.jobs if "--patch-tokens" in job.args]
    assert len(segmentation) == 5 * 13 * 2 and all(job.probe is None for job in segmentation)

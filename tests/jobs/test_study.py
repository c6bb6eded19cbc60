"""`featx extract|probe --config study.yaml`: every store once, one summary, no work the second time."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from featx.cli import app
from featx.jobs.study import StudyError, load_study
from tests.conftest import TINY_SIZE, TINY_VIT

runner = CliRunner()


def write_study(tmp_path, demo_data, settings=("knn",)):
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
        "probe": {"out": "results.jsonl", "setting": list(settings), "k": 5, "bootstrap": 0, "val-bootstrap": 0,
                  "linear-backend": "sklearn"},
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
    segmentation = [job for job in study.jobs if job.extract.patch_tokens]
    assert len(segmentation) == 5 * 13 * 2 and all(job.probe is None for job in segmentation)


def test_a_study_round_trips_through_the_job_types(tmp_path):
    from pathlib import Path

    from featx.jobs.study import dump_study

    study = load_study(Path(__file__).parents[2] / "configs" / "paper.yaml")
    again = load_study(dump_study(study, tmp_path / "explicit.yaml"))
    assert again.jobs == study.jobs and again.cache == study.cache
    first = study.jobs[0]
    assert first.extract.device == "cuda" and first.extract.batch_size == 128 and first.extract.n_last == 4
    assert first.probe.settings == ("knn", "linear", "fewshot") and first.probe.out == study.out


def test_a_killed_study_probe_runs_the_missing_settings_next_time(demo_data, tmp_path):
    """Killed after the kNN records landed: the next run does linear (not kNN again); a failed setting is retried."""
    from featx.evaluation.records import read_jsonl

    study = write_study(tmp_path, demo_data, settings=["knn", "linear"])
    assert runner.invoke(app, ["extract", "--config", str(study)]).exit_code == 0
    assert runner.invoke(app, ["probe", "--config", str(study)]).exit_code == 0
    out = tmp_path / "results.jsonl"
    complete = read_jsonl(out)
    assert {r["job_setting"] for r in complete} == {"knn", "linear"}
    kept = [line for line in out.read_text().splitlines() if json.loads(line)["setting"] == "knn"]
    out.write_text("\n".join(kept) + "\n")  # what a kill between the two settings leaves

    resumed = runner.invoke(app, ["probe", "--config", str(study)])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.count("(linear)") == 2  # each store: only the missing setting ran
    after = read_jsonl(out)
    assert sorted(json.dumps(r, sort_keys=True) for r in after if r["setting"] == "knn") == sorted(kept_records(kept))
    linear = lambda records: [(r["dataset"], r["metric"], r.get("class"), r["value"]) for r in records  # noqa: E731
                              if r["setting"] == "linear"]
    assert linear(after) == linear(complete)
    assert runner.invoke(app, ["probe", "--config", str(study)]).output.count("up to date (v1)") == 2

    failed = [line for line in out.read_text().splitlines() if json.loads(line)["setting"] != "linear"]
    failure = {"record_type": "failure", "setting": "linear", "reason": "killed", "featx_version": "0",
               "created": "now", "store_key": complete[0]["store_key"], "store_version": 1}
    out.write_text("\n".join([*failed, json.dumps(failure)]) + "\n")  # linear failed on one store last night
    retried = runner.invoke(app, ["probe", "--config", str(study)])
    assert retried.exit_code == 0 and retried.output.count("(linear)") == 2 and "up to date" not in retried.output


def kept_records(lines):
    return [json.dumps(json.loads(line), sort_keys=True) for line in lines]


def test_a_study_probe_on_a_dask_cluster_writes_what_a_local_study_probe_writes(demo_data, tmp_path):
    import distributed

    study = write_study(tmp_path, demo_data, settings=["knn", "linear"])
    assert runner.invoke(app, ["extract", "--config", str(study)]).exit_code == 0
    assert runner.invoke(app, ["probe", "--config", str(study)]).exit_code == 0
    local = (tmp_path / "results.jsonl").read_text().splitlines()
    (tmp_path / "results.jsonl").unlink()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        spread = runner.invoke(app, ["probe", "--config", str(study), "--scheduler", cluster.scheduler_address])
    assert spread.exit_code == 0, spread.output
    numbers = lambda lines: [{k: v for k, v in json.loads(x).items() if k not in ("created", "seconds_search")}  # noqa: E731
                             for x in lines]
    assert numbers((tmp_path / "results.jsonl").read_text().splitlines()) == numbers(local)

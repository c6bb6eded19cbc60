"""The command line, a study file and the Python API build the same jobs and write the same records."""

import json

import yaml
from typer.testing import CliRunner

from featx.cli import app
from featx.evaluation.records import read_jsonl
from featx.jobs import ExtractJob, ProbeJob, run_extract, run_probes
from tests.conftest import TINY_SIZE, TINY_VIT

runner = CliRunner()
EXTRACT = {"dataset": "csv", "backbone": "dinov2_vits14", "size": TINY_SIZE, "random-init": True, "n-last": 2,
           "workers": 0, "model-override": [f"{k}={v}" for k, v in TINY_VIT.items()], "option": ["modality=xray"]}
PROBE = {"setting": ["knn", "linear"], "ks": "5,10", "bootstrap": 20, "val-bootstrap": 10,
         "linear-backend": "sklearn"}
VARYING = ("created", "store_path", "command", "test_use", "seconds_search")  # when, where, how fast: not what


def _numbers(path):
    records = [{k: v for k, v in r.items() if k not in VARYING} for r in read_jsonl(path)]
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def _flags(options):
    words = []
    for name, value in options.items():
        if value is True:
            words.append(f"--{name}")
        else:
            for item in value if isinstance(value, list) else [value]:
                words += [f"--{name}", str(item)]
    return words


def test_cli_study_and_python_api_give_identical_records(demo_data, tmp_path):
    csv = str(demo_data.xray_csv)
    cli_out, study_out, api_out = tmp_path / "cli.jsonl", tmp_path / "study.jsonl", tmp_path / "api.jsonl"

    extracted = runner.invoke(app, ["extract", "--root", csv, "--cache", str(tmp_path / "c1"), *_flags(EXTRACT)])
    assert extracted.exit_code == 0, extracted.output
    store = next(line.split(": ", 1)[1] for line in extracted.output.splitlines() if line.startswith("store: "))
    probed = runner.invoke(app, ["probe", "--store", store, "--out", str(cli_out), *_flags(PROBE)])
    assert probed.exit_code == 0, probed.output

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({
        "cache": "c2", "datasets": [{"adapter": "csv", "root": csv, "options": {"modality": "xray"}}],
        "backbones": ["dinov2_vits14"], "sizes": [TINY_SIZE],
        "extract": {k: v for k, v in EXTRACT.items() if k not in ("dataset", "backbone", "size", "option")},
        "probe": {"out": str(study_out), **PROBE},
    }))
    assert runner.invoke(app, ["extract", "--config", str(study)]).exit_code == 0
    assert runner.invoke(app, ["probe", "--config", str(study)]).exit_code == 0

    options = {**EXTRACT, "root": csv, "cache": str(tmp_path / "c3")}
    report = run_extract(ExtractJob(**{k.replace("-", "_"): v for k, v in options.items()
                                       if k not in ("model-override", "option")},
                                    model_overrides=TINY_VIT, options={"modality": "xray"}), echo=lambda _: None)
    run = run_probes(ProbeJob(stores=[report.path], out=api_out, settings=["knn", "linear"], ks=[5, 10],
                              bootstrap=20, val_bootstrap=10, linear_backend="sklearn"))
    assert run.ok and run.records

    assert _numbers(cli_out) == _numbers(study_out) == _numbers(api_out)
    assert {r["job_setting"] for r in read_jsonl(api_out)} == {"knn", "linear"}
    assert read_jsonl(cli_out)[0]["command"].startswith(f"featx probe --out {cli_out} --store {store} ")

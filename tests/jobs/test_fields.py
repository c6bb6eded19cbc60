"""Job options as data: one declaration gives the YAML names, the flags, the types and the checks."""

from pathlib import Path

import pytest
import typer

from featx.cli import app
from featx.cli.jobs import build_job
from featx.finetune.job import FinetuneJob
from featx.jobs.fields import JobError, command_line, from_options, to_options
from featx.pipeline.job import ExtractJob
from featx.probes.job import ProbeJob


def test_yaml_names_flag_names_and_field_names_build_the_same_typed_job():
    by_yaml = from_options(ProbeJob, {"store": ["a.zarr"], "setting": ["knn", "fewshot"], "ks": "5,10",
                                      "shots": "1,2,all", "batch-size": "64", "val-records": "false"})
    by_python = ProbeJob(stores=["a.zarr"], settings=["knn", "fewshot"], ks=[5, 10], shots=[1, 2, "all"],
                         batch_size=64, val_records=False)
    assert by_yaml == by_python
    assert by_python.stores == ("a.zarr",) and by_python.ks == (5, 10) and by_python.shots == (1, 2, "all")
    extract = from_options(ExtractJob, {"dataset": "csv", "root": "x.csv", "backbone": "dinov2_vits14",
                                        "cache": "c", "model-override": ["depth=2", "embed-dim=32"],
                                        "window": [-1000, 400], "option": {"val-fraction": 0.2}})
    assert extract.model_overrides == {"depth": 2, "embed_dim": 32} and extract.window == (-1000.0, 400.0)
    assert extract.root == Path("x.csv") and extract.options == {"val_fraction": 0.2}


@pytest.mark.parametrize(("job_type", "options", "message"), [
    (ProbeJob, {"store": ["a"], "setting": ["svm"]}, "--setting: unknown setting(s) ['svm']"),
    (ProbeJob, {"store": ["a"], "ks": "10,x"}, "--ks: expected an integer, got 'x'"),
    (ProbeJob, {"store": ["a"], "shots": "0,2"}, "--shots: expected positive integers or 'all'"),
    (ProbeJob, {"store": ["a"], "knn-vote": "majority"}, "--knn-vote: expected one of dinov2, renormalised"),
    (ProbeJob, {"store": ["a"], "epoch": 3}, "unknown option 'epoch'"),
    (ProbeJob, {}, "give --store PATH, or --cache DIR with --dataset and --backbone"),
    (ExtractJob, {"dataset": "csv"}, "give --root, --backbone, --cache"),
    (ExtractJob, {"dataset": "csv", "root": "r", "backbone": "b", "cache": "c", "patch-blocks": 2},
     "--patch-blocks 2: needs --patch-tokens"),
    (FinetuneJob, {"dataset": "csv", "root": "r", "run-dir": "d", "model": "unet"}, "give --backbone NAME"),
])
def test_a_bad_option_is_one_sentence_naming_it(job_type, options, message):
    with pytest.raises(JobError) as error:
        from_options(job_type, options, "study.yaml: datasets[0]")
    assert str(error.value).startswith("study.yaml: datasets[0]: ") and message in str(error.value)


JOBS = [
    ProbeJob(stores=["s.zarr"], settings=["knn", "linear", "fewshot"], ks=[5, 7], k=5, seed=3, lrs=[0.1],
             shots=[2, "all"], val_records=False, patch_tokens=False, out=Path("r.jsonl"), seg_lrs=[0.01]),
    ExtractJob(dataset="csv", root="x.csv", backbone="dinov2_vits14", cache="c", size=28, random_init=True,
               model_overrides={"depth": 2, "init_values": 1.0}, options={"val_fraction": 0.2}, pixel_cache=False,
               window=(-1000, 400), patch_tokens=True, patch_blocks=1),
    FinetuneJob(dataset="msd", root="task", run_dir="run", out="o.jsonl", from_scratch=True, model="unet",
                lora_targets=["qkv"], grad_checkpointing=False, progress=False),
]


@pytest.mark.parametrize("job", JOBS, ids=lambda job: type(job).__name__)
def test_a_job_round_trips_through_its_options_and_its_command_line(job):
    assert from_options(type(job), to_options(job)) == job
    words = command_line("x", job).split()[2:]
    name = {ProbeJob: "probe", ExtractJob: "extract", FinetuneJob: "finetune"}[type(job)]
    command = typer.main.get_command(app).commands[name]
    params = command.make_context(name, words).params
    params.pop("config", None)
    assert build_job(type(job), params) == job


def test_only_options_that_change_a_number_enter_the_probe_fingerprint():
    job = ProbeJob(stores=["a.zarr"], settings=["knn"])
    same = ProbeJob(stores=["b.zarr"], settings=["knn", "linear"], device="cpu", out=Path("elsewhere.jsonl"))
    assert job.fingerprint() == same.fingerprint()
    assert job.fingerprint() != ProbeJob(stores=["a.zarr"], settings=["knn"], ks=[10]).fingerprint()

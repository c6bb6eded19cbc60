"""End to end: the demo is a miniature of the study and its report draws every figure from the demo's own results."""

import json

import pytest

from featx.cache import FeatureStore
from featx.demo.run import DEMO_BACKBONES, run_demo
from featx.report.build import build_report
from featx.report.figures import Drawn, Missing

ALL_FIGURES = {"fig1_ranks", "fig2_pca", "fig3_linear", "fig4_decoders", "fig5_fewshot", "fig6_masks"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"), workers=0, progress=False, echo=None)


def headline(result):
    records = [json.loads(line) for line in result.results.read_text().splitlines()]
    return [r for r in records if r.get("record_type") != "failure" and r["split"] == "test" and r.get("class") is None
            and r["metric"] in ("auroc_macro", "dice_jaccard_mean")]


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the whole demo runs in the first test's fixture: minutes, more on a busy machine
def test_the_demo_compares_three_backbone_families_with_every_probe_and_no_saturated_number(demo):
    rows = headline(demo)
    assert {r["backbone"] for r in rows} == {b.name for b in DEMO_BACKBONES}  # a DINOv2 ViT, a CLIP ViT, a CNN
    settings = {(r["dataset"], r["setting"]) for r in rows}
    for dataset in ("demo_xray", "demo_ct"):
        assert {(dataset, s) for s in ("knn", "linear", "fewshot-knn", "fewshot-linear")} <= settings
    assert {("msd_shapes", "seg_linear"), ("msd_shapes", "seg_unet")} <= settings
    shots = {r["hyperparameters"].get("shots") for r in rows if r["setting"].startswith("fewshot") and r.get("aggregate")}
    assert len(shots) >= 2
    for r in rows:
        assert r["random_init"] is True and r["n_patients"] > 0 and r["command"]
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
        if r["metric"] == "auroc_macro":  # graded planted signals: no classification cell reads 1.000 [1.000, 1.000]
            assert (r["value"], r["ci_low"], r["ci_high"]) != (1.0, 1.0, 1.0), r
    linear = {(r["dataset"], r["backbone"]): r for r in rows if r["setting"] == "linear"}
    values = sorted(r["value"] for r in linear.values())
    assert values[-1] - values[0] > 0.05  # the backbones differ
    assert not any(json.loads(line).get("record_type") == "failure" for line in demo.results.read_text().splitlines())


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the whole demo runs in the first test's fixture: minutes, more on a busy machine
def test_every_figure_of_the_report_is_drawn_from_the_demo_and_records_alone_draw_1_3_4_5(demo, tmp_path):
    page = demo.html.read_text()
    assert "Not drawn" not in page and 'class="missing"' not in page
    assert page.count("data:image/png;base64,") >= len(ALL_FIGURES)  # and the reliability diagram
    for needle in ("n test (patients / images)", "Hyper-parameters: chosen on validation", "Not run / failed", "Runs"):
        assert needle in page, needle
    body = page.split("<footer>")[0]
    assert str(demo.out) not in body  # no machine paths above the provenance footer
    alone = build_report([demo.results], tmp_path / "alone")
    assert {f.key for f in alone.figures if isinstance(f, Drawn)} == {"fig1_ranks", "fig3_linear", "fig4_decoders",
                                                                       "fig5_fewshot", "reliability"}
    assert {f.key for f in alone.figures if isinstance(f, Missing)} == {"fig2_pca", "fig6_masks"}
    for path in demo.stores.values():
        assert FeatureStore.open(path).is_complete


@pytest.mark.slow
def test_one_pair_of_backbones_differs_significantly_and_one_does_not(demo):
    rows = [json.loads(line) for line in (demo.report.parent / "comparisons.jsonl").read_text().splitlines()]
    paired = [r for r in rows if r["setting"] in ("knn", "linear") and r["metric"] == "auroc_macro"]
    assert any(r["p_holm"] < 0.05 for r in paired), paired  # a real difference on the same test patients
    assert any(r["p_holm"] >= 0.05 for r in paired), paired  # and a pair the paired test cannot tell apart


@pytest.mark.slow
def test_a_demo_probe_job_run_from_the_command_line_writes_the_demo_records(demo, tmp_path):
    import dataclasses
    import shlex

    from typer.testing import CliRunner

    from featx.cli import app
    from featx.demo.run import demo_jobs
    from featx.evaluation.records import read_jsonl

    extract_jobs, probes = demo_jobs(demo.out, workers=0, progress=False)[0]
    mine = [path for name, path in demo.stores.items() if name.endswith(f" x {extract_jobs[0].backbone}")]
    classification_first = sorted(mine, key=lambda path: FeatureStore.open(path).task == "segmentation")
    job = dataclasses.replace(probes(classification_first)[0], out=tmp_path / "cli.jsonl")  # kNN, linear, few-shot
    result = CliRunner().invoke(app, shlex.split(job.command_line())[1:])
    assert result.exit_code == 0, result.output
    varying = ("created", "command", "seconds_search", "test_use", "test_reuse", "predictions")

    def numbers(records):
        return sorted(json.dumps({k: v for k, v in r.items() if k not in varying}, sort_keys=True) for r in records)

    keys = {FeatureStore.open(p).key for p in job.stores}
    demo_records = [r for r in read_jsonl(demo.results) if r["store_key"] in keys and r["job_setting"] in job.settings]
    assert numbers(read_jsonl(tmp_path / "cli.jsonl")) == numbers(demo_records)

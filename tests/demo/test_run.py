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
    assert page.count("data:image/png;base64,") == len(ALL_FIGURES)
    for needle in ("n test (patients / images)", "Hyper-parameters: chosen on validation", "Not run / failed", "Runs"):
        assert needle in page, needle
    body = page.split("<footer>")[0]
    assert str(demo.out) not in body  # no machine paths above the provenance footer
    alone = build_report([demo.results], tmp_path / "alone")
    assert {f.key for f in alone.figures if isinstance(f, Drawn)} == {"fig1_ranks", "fig3_linear", "fig4_decoders",
                                                                       "fig5_fewshot"}
    assert {f.key for f in alone.figures if isinstance(f, Missing)} == {"fig2_pca", "fig6_masks"}
    for path in demo.stores.values():
        assert FeatureStore.open(path).is_complete

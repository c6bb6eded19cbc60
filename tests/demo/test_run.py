"""End to end: the demo job extracts, probes and reports, and the probes learn the planted signal."""

import json

from featx.cache import FeatureStore
from featx.demo.run import run_demo
from tests.conftest import TINY_VIT


def test_demo_pipeline_learns_the_planted_signal(tmp_path):
    result = run_demo(tmp_path, size=56, model_overrides=TINY_VIT | {"depth": 4, "init_values": 1.0}, workers=0,
                      progress=False, echo=None)
    records = [json.loads(line) for line in result.results.read_text().splitlines()]
    headline = {(r["dataset"], r["setting"]): r for r in records
                if r["split"] == "test" and r["metric"] == "auroc_macro" and r.get("class") is None}
    assert set(headline) == {("demo_xray", "knn"), ("demo_xray", "linear"), ("demo_ct", "knn"), ("demo_ct", "linear")}
    for (dataset, setting), r in headline.items():
        assert r["value"] > 0.9, f"{dataset}/{setting} did not learn the planted signal: {r['value']:.3f}"
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    dice = [r for r in records if r["split"] == "test" and r["metric"] == "dice_jaccard_mean" and r.get("class") is None]
    assert [(r["dataset"], r["setting"], r["aggregation"]) for r in dice] == [("msd_shapes", "seg_linear", "per_volume")]
    assert dice[0]["ci_low"] <= dice[0]["value"] <= dice[0]["ci_high"]
    assert dice[0]["value"] > 0.5  # planted ellipsoids: the mean-mask predictor stays near 0.4 Dice
    assert "dice_jaccard_mean" in result.table
    for r in records:
        assert r["random_init"] is True and r["weights_hash"] == "random-init"
        assert r["store_key"] and r["store_path"]
    assert result.random_init
    for path in result.stores.values():
        assert FeatureStore.open(path).is_complete
    assert "(random weights)" in result.report.read_text()
    assert result.figure is not None and result.figure.exists()
    page = result.html.read_text()
    assert result.html.name == "report.html" and 'class="banner"' in page and page.count("<table>") >= 3
    assert result.figure.name == "fig2_pca.png" and "data:image/png;base64," in page
    drawn = {f.name for f in (result.out / "report" / "figures").glob("*.png")}
    assert {"fig2_pca.png", "fig3_linear.png", "fig6_masks.png"} <= drawn  # patch tokens and masks of the seg demo
    # one backbone, one decoder and no few-shot: the rank plot, Figure 4 and Figure 5 say what they need
    assert page.count('class="missing"') == 3 and "no few-shot results" in page
    assert (result.out / "report" / "tables.csv").exists()

    said = []
    again = run_demo(tmp_path, size=56, model_overrides=TINY_VIT | {"depth": 4, "init_values": 1.0}, workers=0,
                     progress=False, echo=said.append)
    assert again.stores == result.stores
    for name, path in result.stores.items():
        assert any(line.startswith(f"{name}: store {path.stem} up to date") for line in said), said

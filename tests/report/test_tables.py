import pandas as pd

from featx.report import collect, load_records, summary_table
from featx.report.tables import adaptation_table, cells_csv, section_tables, to_html, to_markdown
from tests.report.conftest import record, write


def frame(tmp_path, records):
    return load_records([write(tmp_path / "r.jsonl", records)])


def test_tables_have_datasets_as_columns_backbones_as_rows_settings_as_sections(tmp_path):
    records = [
        record(),
        record(setting="knn", value=0.70, ci_low=0.69, ci_high=0.71),
        record(backbone="densenet201", value=0.735, ci_low=0.72, ci_high=0.745, store_key="d"),
        record(dataset="chexpert", value=0.82, ci_low=0.81, ci_high=0.83, store_key="c"),
        record(metric="auroc", **{"class": "Effusion"}, value=0.9),  # per-class: not a headline
        record(split="val", value=0.99),  # selection numbers never reach the table
    ]
    table = summary_table(frame(tmp_path, records))
    lines = table.splitlines()
    assert lines.index("### knn: test auroc_macro (95% patient-bootstrap interval)") < lines.index(
        "### linear: test auroc_macro (95% patient-bootstrap interval)")
    assert "| backbone | chexpert | nih |" in lines
    assert "| densenet201 | – | 0.735 [0.720, 0.745] |" in lines
    assert "| dinov2_vitl14 | **0.820 [0.810, 0.830]** | **0.760 [0.750, 0.770]** |" in lines
    assert "random weights" not in table and "0.990" not in table and "0.900" not in table


def test_random_weights_test_reuse_and_conflicts_are_visible(tmp_path):
    random = {"random_init": True, "weights_hash": "random-init"}
    table = summary_table(frame(tmp_path, [record(**random, test_reuse=True), record(dataset="x", store_key="p", **random),
                                           record(dataset="x", store_key="q", **random)]))
    assert "| dinov2_vitl14 (random weights) | **0.760 [0.750, 0.770] ‡** | conflict (2 runs) |" in table
    assert "not a model comparison" in table and "x: 2 different runs, not merged" in table


def test_ties_are_marked_in_markdown_html_and_csv(tmp_path):
    records = [record(value=0.80, ci_low=0.78, ci_high=0.82), record(backbone="b", value=0.79, ci_low=0.77, ci_high=0.81),
               record(backbone="c", value=0.60, ci_low=0.55, ci_high=0.65)]
    experiments = collect(frame(tmp_path, records))
    [table] = section_tables(experiments)
    markdown = to_markdown(table)
    assert "| b | 0.790 [0.770, 0.810] ≈ |" in markdown and "| c | 0.600 [0.550, 0.650] |" in markdown
    assert '<td class="best">0.800 [0.780, 0.820]</td>' in to_html(table) and 'class="tied"' in to_html(table)
    csv = cells_csv(experiments).set_index("model")
    assert csv.loc["b", "tied"] and csv.loc["dinov2_vitl14", "best"] and not (csv.loc["c", "best"] or csv.loc["c", "tied"])
    path = tmp_path / "t.csv"
    cells_csv(experiments).to_csv(path, index=False)
    assert pd.read_csv(path)["value"].tolist() == csv["value"].tolist()


def test_fewshot_table_is_by_shots_with_spread(tmp_path, full_records):
    table = summary_table(frame(tmp_path, full_records))
    assert "| dataset | backbone | 1 | 4 | all |" in table
    assert "| nih | densenet201 | 0.600 ± 0.030 [0.550, 0.650] ≈ | 0.650 ± 0.030 [0.600, 0.700] ≈ | 0.700 ± 0.030 [0.650, 0.750] ≈ |" in table
    assert "### seg_unet: test dice_jaccard_mean" in table


def test_fine_tuning_sits_beside_frozen_probes_with_trainable_parameters(tmp_path, full_records):
    table = adaptation_table(collect(frame(tmp_path, full_records)))
    rows = {(r[0].text, r[1].text): [c.text for c in r[2:]] for r in table.rows}
    assert table.header == ["backbone", "setting", "trainable params", "chexpert", "nih"]
    assert rows[("dinov2_vitl14", "finetune-lora")] == ["1,000 (0.10%)", "–", "0.800 [0.790, 0.810]"]
    assert rows[("dinov2_vitl14", "knn")][0] == "0" and rows[("dinov2_vitl14", "linear")][0] == "–"
    assert ("densenet201", "finetune-lora") not in rows and ("dinov2_vitl14", "seg_unet") not in rows
    assert adaptation_table(collect(frame(tmp_path, [record()]))) is None


def test_no_headline_records_says_so(tmp_path):
    assert summary_table(frame(tmp_path, [record(split="val")])).startswith("No test-split headline records")

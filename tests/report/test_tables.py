import json

import pandas as pd
import pytest

from featx.report import load_records, plot_summary, summary_table


def record(**fields):
    base = {"dataset": "nih", "backbone": "dinov2_vitl14", "setting": "linear", "split": "test",
            "metric": "auroc_macro", "value": 0.76, "ci_low": 0.75, "ci_high": 0.77, "random_init": False,
            "created": "2026-11-27T10:00:00+00:00"}
    return base | fields


def write(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_table_has_one_row_per_dataset_backbone_and_one_column_per_setting(tmp_path):
    records = [
        record(),
        record(setting="knn", value=0.70, ci_low=0.69, ci_high=0.71),
        record(backbone="densenet201", value=0.735, ci_low=0.72, ci_high=0.75),
        record(metric="auroc", **{"class": "Effusion"}, value=0.9),  # per-class: not a headline
        record(split="val", value=0.99),  # selection numbers never reach the table
        record(value=0.5, created="2026-11-26T10:00:00+00:00"),  # an older run of the same cell
    ]
    table = summary_table(load_records([write(tmp_path / "r.jsonl", records)]))
    lines = table.splitlines()
    assert "| dataset | backbone | knn | linear |" in lines
    assert "| nih | densenet201 | – | 0.735 [0.720, 0.750] |" in lines
    assert "| nih | dinov2_vitl14 | 0.700 [0.690, 0.710] | 0.760 [0.750, 0.770] |" in lines
    assert "random weights" not in table


def test_random_weight_results_are_marked(tmp_path):
    table = summary_table(load_records([write(tmp_path / "r.jsonl", [record(random_init=True)])]))
    assert "dinov2_vitl14 (random weights)" in table and "not a model comparison" in table


def test_malformed_lines_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record()) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"r.jsonl:2: not valid JSON"):
        load_records([path])
    path.write_text(json.dumps({"dataset": "x"}) + "\n")
    with pytest.raises(ValueError, match="lacks fields"):
        load_records([path])


def test_summary_figure_is_a_png(tmp_path):
    records = load_records([write(tmp_path / "r.jsonl", [record(), record(setting="knn", value=0.7)])])
    figure = plot_summary(records, tmp_path / "out" / "summary.png")
    assert figure is not None and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_summary(pd.DataFrame(records).assign(split="val"), tmp_path / "none.png") is None


def fewshot_record(probe, shots, value, std, seed=None):
    fields = {"setting": f"fewshot-{probe}", "value": value, "hyperparameters": {"shots": shots},
              "random_init": True}
    if seed is None:
        fields |= {"aggregate": "mean_over_seeds", "macro_std": std}
    else:
        fields["hyperparameters"] = {"shots": shots, "fewshot_seed": seed}
    return record(**fields)


def test_fewshot_results_get_their_own_table_and_curve_not_a_headline_cell(tmp_path):
    from featx.report import plot_fewshot

    records = [record(), fewshot_record("linear", 1, 0.61, 0.1, seed=0),
               fewshot_record("linear", 1, 0.65, 0.1), fewshot_record("linear", "all", 0.75, 0.0),
               fewshot_record("linear", 8, 0.70, 0.02), fewshot_record("knn", 8, 0.66, 0.05)]
    frame = load_records([write(tmp_path / "r.jsonl", records)])
    table = summary_table(frame)
    assert "| dataset | backbone | linear |" in table  # few-shot is not a headline column
    assert "| dataset | backbone | probe | 1 | 8 | all |" in table
    assert "| nih | dinov2_vitl14 (random weights) | linear | 0.650 ± 0.100 | 0.700 ± 0.020 | 0.750 ± 0.000 |" in table
    assert "| nih | dinov2_vitl14 (random weights) | knn | – | 0.660 ± 0.050 | – |" in table
    figure = plot_fewshot(frame, tmp_path / "fewshot.png")
    assert figure is not None and figure.read_bytes()[:4] == b"\x89PNG"


def test_test_reuse_and_fewshot_probe_are_marked(tmp_path):
    records = [record(test_reuse=2), record(setting="knn", test_reuse=0),
               record(setting="fewshot-linear", aggregate="mean_over_seeds", macro_std=0.01,
                      hyperparameters={"shots": 4, "probe": "logistic_regression"})]
    table = summary_table(load_records([write(tmp_path / "r.jsonl", records)]))
    assert "| nih | dinov2_vitl14 | 0.760 [0.750, 0.770] | 0.760 [0.750, 0.770] (test re-used x2) |" in table
    assert "| linear (logistic_regression) | 0.760 ± 0.010 |" in table

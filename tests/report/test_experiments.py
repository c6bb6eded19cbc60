"""Distinct experiments never merge into one cell (issue #12, first bullet)."""

from featx.report import collect, load_records
from tests.report.conftest import record, write


def cells(tmp_path, records):
    return collect(load_records([write(tmp_path / "r.jsonl", records)]))


def test_two_sizes_and_two_weights_of_one_backbone_are_four_rows(tmp_path):
    runs = []
    for size in (56, 112):
        for weights, random in (("b" * 64, False), ("random-init", True)):
            runs.append(record(img_size=size, weights_hash=weights, random_init=random,
                               store_key=f"{size}-{weights[:4]}", value=0.6 + size / 1000 + (0 if random else 0.1)))
    found = cells(tmp_path, runs)
    assert sorted(found.cells["model"]) == [
        "dinov2_vitl14 (112 px, random weights)", "dinov2_vitl14 (112 px, weights bbbbbbbb)",
        "dinov2_vitl14 (56 px, random weights)", "dinov2_vitl14 (56 px, weights bbbbbbbb)",
    ]
    assert sorted(found.cells["value"].round(3)) == sorted(round(r["value"], 3) for r in runs)
    assert not found.problems and (found.cells["conflict"] == "").all()


def test_different_runs_in_one_cell_are_a_conflict_not_the_newest(tmp_path):
    found = cells(tmp_path, [
        record(store_key="key-a", value=0.70),
        record(store_key="key-b", value=0.80, created="2026-11-28T10:00:00+00:00"),  # e.g. other preprocessing
        record(dataset="chexpert", store_key="c", seed=0, value=0.6),
        record(dataset="chexpert", store_key="c", seed=1, value=0.65),
    ])
    by_column = found.cells.set_index("column")
    assert by_column.loc["nih", "value"] != by_column.loc["nih", "value"]  # NaN: no number shown
    assert "0.700 (store key-a)" in by_column.loc["nih", "conflict"] and "0.800 (store key-b)" in by_column.loc["nih", "conflict"]
    assert "seed 1" in by_column.loc["chexpert", "conflict"]
    assert len(found.problems) == 2 and all("not merged" in p for p in found.problems)


def test_a_rerun_of_the_same_experiment_keeps_the_newest(tmp_path):
    found = cells(tmp_path, [record(value=0.5, created="2026-11-26T10:00:00+00:00"), record(value=0.76)])
    assert found.cells["value"].tolist() == [0.76] and found.cells["conflict"].tolist() == [""]


def test_other_backends_are_other_sections_and_probe_settings_conflict(tmp_path):
    found = cells(tmp_path, [
        record(hyperparameters={"backend": "sklearn", "C": 1.0}, value=1.0),
        record(hyperparameters={"backend": "torch", "lr": 0.01}, value=0.881),
        record(setting="knn", hyperparameters={"backend": "faiss", "T": 0.07, "k": 10}, value=0.7),
        record(setting="knn", hyperparameters={"backend": "faiss", "T": 0.1, "k": 20}, value=0.72),
    ])
    sections = found.cells.set_index("section")
    assert sections.loc["linear (sklearn)", "value"] == 1.0 and sections.loc["linear (torch)", "value"] == 0.881
    assert "T=0.07" in sections.loc["knn", "conflict"] and "k=" not in sections.loc["knn", "conflict"]


def test_one_dataset_with_two_label_sets_is_two_columns_and_a_problem(tmp_path):
    found = cells(tmp_path, [record(label_names=["a", "b"]), record(label_names=["a", "c"], store_key="other")])
    assert sorted(found.cells["column"]) == ["nih [labels 1]", "nih [labels 2]"]
    assert any("2 different label sets" in p for p in found.problems)


def test_segmentation_and_test_reuse_are_recognised(tmp_path):
    found = cells(tmp_path, [
        record(setting="seg_unet", metric="dice_jaccard_mean", value=0.9),
        record(setting="seg_unet", metric="dice", value=0.95),  # not the headline when the mean is there
        record(test_reuse=True),
    ])
    sections = found.cells.set_index("section")
    assert sections.loc["seg_unet", "task"] == "segmentation" and sections.loc["seg_unet", "value"] == 0.9
    assert sections.loc["linear", "task"] == "classification" and bool(sections.loc["linear", "test_reuse"])

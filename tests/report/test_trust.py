from featx.report import collect, load_records
from featx.report.tables import hyperparameter_table, section_tables, to_markdown
from tests.report.conftest import record, write

SMALL = "test has only 12 patients (fewer than 30): its AUROC and interval are rough"


def frame(tmp_path, records):
    return load_records([write(tmp_path / "r.jsonl", records)])


def test_each_column_says_how_many_patients_and_images_and_warnings_sit_beside_their_numbers(tmp_path):
    shared = {"n_patients": 24, "n_test": 52, "level": "image"}
    records = [
        record(**shared),
        record(backbone="densenet201", store_key="d", value=0.70, ci_low=0.69, ci_high=0.71, **shared),
        record(dataset="ct", store_key="c", n_patients=12, n_test=12, level="volume", small_set_warnings=[SMALL],
               label_names=["clear", "lesion"]),
        record(dataset="ct", backbone="densenet201", store_key="dc", n_patients=12, n_test=12, level="volume",
               ci_low_support=True, label_names=["clear", "lesion"]),
        *[record(metric="auroc", **{"class": name}, positive_patients=n, **shared)
          for name, n in (("nodule", 9), ("effusion", 11), ("cardiomegaly", 13))],
    ]
    records = frame(tmp_path, records)
    [table] = section_tables(collect(records), records)
    text = to_markdown(table)
    assert "| n test (patients / images) | 12 patients / 12 volumes | 24 patients / 52 images |" in text
    assert "| dinov2_vitl14 | **0.760 [0.750, 0.770] ⚠** | **0.760 [0.750, 0.770]** |" in text
    assert "| densenet201 | **0.760 [0.750, 0.770] ⚠** | 0.700 [0.690, 0.710] |" in text
    assert f"⚠ ct: {SMALL}" in table.notes
    assert "⚠ ct: the 95% interval rests on few bootstrap resamples (ci_low_support): it is rough" in table.notes
    assert "nih: test patients with a positive label, per class: nodule 9, effusion 11, cardiomegaly 13" in table.notes
    assert not any(n.startswith("ct: test patients with a positive label") for n in table.notes)  # binary: n says it


def test_the_chosen_hyper_parameters_are_listed_with_the_grid_they_were_chosen_from(tmp_path):
    chosen = {"k": 20, "backend": "faiss", "temperature": 0.07, "selected_on": "val"}
    records = [record(setting="knn", hyperparameters=chosen)]
    records += [record(setting="knn", split="val", hyperparameters={"k": k, "backend": "faiss", "temperature": 0.07},
                       selected=k == 20) for k in (10, 20, 100, 200)]
    records += [record(setting="linear", hyperparameters={"backend": "torch", "lr": 0.01})]  # written without val records
    table = hyperparameter_table(*(lambda r: (collect(r), r))(frame(tmp_path, records)))
    rows = {row[0].text: [c.text for c in row] for row in table.rows}
    assert rows["knn"] == ["knn", "nih", "dinov2_vitl14", "k=20", "k ∈ {10, 20, 100, 200} (4 candidates)", "val",
                           "backend=faiss, temperature=0.07"]
    assert rows["linear"][3:5] == ["lr=0.01", "no validation records (fixed, or written with --no-val-records)"]

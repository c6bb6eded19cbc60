import hashlib

import numpy as np

from featx.datasets import build_index
from featx.demo.data import XRAY_FINDINGS, make_demo_data


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_demo_data_is_deterministic_and_indexable(tmp_path):
    first = make_demo_data(tmp_path / "a", n_patients=12, n_volumes=6)
    make_demo_data(tmp_path / "b", n_patients=12, n_volumes=6)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")

    xray = build_index("csv", first.xray_csv, modality="xray")
    assert xray.task == "multilabel" and xray.label_names == list(XRAY_FINDINGS)
    assert set(xray.table["split"]) == {"train", "val", "test"}
    assert 0 < xray.labels.mean() < 1
    kinds = {p.suffix for p in (first.xray_csv.parent / "images").iterdir()}
    assert kinds == {".png", ".jpg"}

    ct = build_index("csv", first.ct_csv, modality="ct")
    assert ct.task == "binary" and ct.is_3d and ct.table["volume_id"].nunique() == 6
    for split in ("train", "val", "test"):
        labels = ct.labels[ct.table["split"].to_numpy() == split]
        assert set(np.argmax(labels, axis=1)) == {0, 1}, f"{split} needs both classes"


def test_demo_data_already_there_is_left_untouched(tmp_path):
    make_demo_data(tmp_path, n_patients=6, n_volumes=4)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    again = make_demo_data(tmp_path, n_patients=6, n_volumes=4)
    assert again.xray_csv.is_file() and {p: p.stat().st_mtime_ns for p in stamps} == stamps
    other = make_demo_data(tmp_path, n_patients=8, n_volumes=4)  # other parameters: written anew
    assert other.xray_csv.stat().st_mtime_ns != stamps[other.xray_csv]


def test_patient_metadata_is_written_on_request_and_leaves_the_images_unchanged(tmp_path):
    import csv

    plain = make_demo_data(tmp_path / "plain", n_patients=12, n_volumes=6)
    with_meta = make_demo_data(tmp_path / "meta", n_patients=12, n_volumes=6, metadata=True)
    images = {k: v for k, v in digest(tmp_path / "plain").items() if not k.endswith((".csv", ".json"))}
    assert images == {k: v for k, v in digest(tmp_path / "meta").items() if not k.endswith((".csv", ".json"))}
    rows = list(csv.DictReader(with_meta.xray_csv.open()))
    assert {"age", "sex", "view"} <= set(rows[0]) and {r["view"] for r in rows} <= {"PA", "AP"}
    by_patient = {(r["patient_id"], r["age"], r["sex"]) for r in rows}
    assert len(by_patient) == len({r["patient_id"] for r in rows})  # age and sex belong to the patient
    assert {"age", "sex"} <= set(next(csv.DictReader(with_meta.ct_csv.open())))
    assert "age" not in next(csv.DictReader(plain.xray_csv.open()))

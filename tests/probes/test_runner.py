import json

import numpy as np
import pytest

from featx.evaluation.records import REQUIRED, read_jsonl
from featx.probes.job import ProbeJob
from featx.probes.runner import run_probes


def test_run_probes_on_real_store_learns_planted_signal(store_factory, tmp_path):
    path = store_factory(task="multilabel", n_classes=4, n_patients=150, signal=3.0)
    out = tmp_path / "results.jsonl"
    run = run_probes(ProbeJob(stores=[path], settings=["knn", "linear"], out=out, bootstrap=100, batch_size=32))
    assert run.ok, run.problems
    records = read_jsonl(out)
    assert records == json.loads(json.dumps(run.records))
    test_macro = {r["setting"]: r for r in records if r["split"] == "test" and r["metric"] == "auroc_macro"}
    assert test_macro["knn"]["value"] > 0.9 and test_macro["linear"]["value"] > 0.95
    for r in records:
        assert all(key in r for key in REQUIRED)
        assert r["random_init"] is True and r["weights_hash"] == "deadbeef"
        if r["split"] == "test":
            assert r["ci_low"] <= r["value"] <= r["ci_high"]
    per_class = [r for r in records if r["metric"] == "auroc" and r["setting"] == "knn"]
    assert sorted(r["class"] for r in per_class) == ["c0", "c1", "c2", "c3"]
    val = [r for r in records if r["split"] == "val" and r["setting"] == "linear"]
    assert len(val) == 16 and sum(r["selected"] for r in val) == 1
    assert test_macro["knn"]["hyperparameters"]["method"] == "mlknn"


def test_cache_lookup_and_problems_do_not_stop_the_rest(store_factory, tmp_path):
    store_factory(task="multiclass", dataset="good")
    store_factory(task="multiclass", dataset="noval", drop_val=True)
    cache = tmp_path / "cache"
    out = tmp_path / "r.jsonl"
    run = run_probes(ProbeJob(cache=cache, datasets=["good", "noval", "missing"], backbones=["tiny_vit"], settings=["knn", "linear"], out=out, bootstrap=20, batch_size=32))
    text = "\n".join(run.problems)
    assert "missing" in text and "run `featx extract` first" in text
    assert "noval" in text and "validation" in text
    assert {r["dataset"] for r in read_jsonl(out)} == {"good"}


def test_label_names_differing_from_existing_results(store_factory, tmp_path):
    out = tmp_path / "r.jsonl"
    first = store_factory(task="multiclass", dataset="d", seed=0)
    assert run_probes(ProbeJob(stores=[first], settings=["knn"], out=out, bootstrap=10)).ok
    second = store_factory(task="multiclass", dataset="d", seed=1, label_names=["x", "y", "z"])
    other = store_factory(task="binary", dataset="e", seed=2)
    run = run_probes(ProbeJob(stores=[second, other], settings=["knn"], out=out, bootstrap=10))
    assert len(run.problems) == 1 and "label names" in run.problems[0]
    assert {r["dataset"] for r in run.records} == {"e"}


def test_3d_volume_level_and_invalid_rows(store_factory, tmp_path):
    path = store_factory(task="binary", volumes=True, n_patients=60, per_patient=3, failed_rows=(0,))
    run = run_probes(ProbeJob(stores=[path], settings=["knn"], bootstrap=20))
    assert run.ok
    macro = [r for r in run.records if r["metric"] == "auroc_macro" and r["split"] == "test"][0]
    assert macro["level"] == "volume" and macro["n_test"] == int(np.ceil(60 * 0.2))
    assert any(r["metric"] == "accuracy" for r in run.records)


def test_no_positives_warns_and_continues(store_factory, tmp_path, capsys):
    path = store_factory(task="multilabel", n_classes=3, n_patients=80)
    from featx.cache import FeatureStore

    store = FeatureStore.open(path, writable=True)
    labels = store.labels
    labels[:, 2] = 0.0  # no positives anywhere for c2
    store.group["labels"][:] = labels
    messages = []
    run = run_probes(ProbeJob(stores=[path], settings=["knn"], bootstrap=10), echo=messages.append)
    assert run.ok
    assert any("c2" in m and "undefined" in m for m in messages)
    c2 = [r for r in run.records if r.get("class") == "c2" and r["split"] == "test"][0]
    assert c2["value"] is None


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="unknown setting"):
        run_probes(ProbeJob(stores=[], settings=["svm"]))


def test_fewshot_and_mlknn_settings_write_records(store_factory, tmp_path):
    path = store_factory(task="multilabel", n_classes=3, n_patients=120, signal=3.0)
    out = tmp_path / "r.jsonl"
    run = run_probes(ProbeJob(stores=[path], settings=["mlknn", "fewshot"], out=out, bootstrap=20, shots=(2, "all"), fewshot_seeds=2))
    assert run.ok, run.problems
    records = read_jsonl(out)
    assert {r["setting"] for r in records} == {"mlknn", "fewshot-knn", "fewshot-linear"}
    aggregate = [r for r in records if r.get("aggregate") and r["metric"] == "auroc_macro"]
    assert {(r["setting"], r["hyperparameters"]["shots"]) for r in aggregate} == {
        (s, n) for s in ("fewshot-knn", "fewshot-linear") for n in (2, "all")
    }
    two = [r for r in aggregate if r["hyperparameters"]["shots"] == 2 and r["setting"] == "fewshot-linear"][0]
    assert two["n_seeds"] == 2 and "macro_std" in two and two["split"] == "test"
    assert all(r["split"] == "test" for r in records if r["setting"].startswith("fewshot"))


def test_store_with_a_patient_in_train_and_test_is_refused_at_probe_time(store_factory, tmp_path):
    """A store written by a script or an older featx (FeatureStore.create now refuses such an index)."""
    import zarr

    from featx.cache import FeatureStore
    from featx.evaluation.features import load_probe_data
    from featx.evaluation.selection import PatientLeakError, Splits

    path = store_factory(task="multiclass", n_patients=60)
    group = zarr.open_group(str(path), mode="r+")
    split = group["index/split"][:]
    patients = group["index/patient_id"][:]
    leaked = patients[split == "test"][0]
    split[np.flatnonzero(patients == leaked)[0]] = "train"
    group["index/split"][:] = split
    out = tmp_path / "r.jsonl"
    messages = []
    run = run_probes(ProbeJob(stores=[path], settings=["knn"], out=out, bootstrap=10), echo=messages.append)
    assert not run.records and read_jsonl(out) == []  # no numbers; the failure is recorded, with its reason
    assert [f["setting"] for f in read_jsonl(out, failures=True)] == ["knn"]
    assert len(run.problems) == 1 and f"patient '{leaked}' appears in splits ['test', 'train']" in run.problems[0]
    assert str(FeatureStore.open(path).path) in run.problems[0] and "patient-level" in run.problems[0]
    with pytest.raises(PatientLeakError, match="patient-level"):
        Splits(load_probe_data(FeatureStore.open(path)))


def test_every_knn_record_names_its_vote(store_factory, tmp_path):
    path = store_factory(task="multiclass", n_patients=100)
    run = run_probes(ProbeJob(stores=[path], settings=["knn"], bootstrap=10))
    renorm = run_probes(ProbeJob(stores=[path], settings=["knn"], bootstrap=10, knn_vote="renormalised", allow_test_reuse=True))
    for records, vote in ((run.records, "dinov2"), (renorm.records, "renormalised")):
        assert records and all(r["hyperparameters"]["vote"] == vote for r in records)
        for r in records:
            hyper = r["hyperparameters"]
            assert hyper["softmax_over"] == (max(hyper["ks"]) if vote == "dinov2" else hyper["k"])

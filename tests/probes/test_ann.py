"""Approximate kNN (FAISS IVF-Flat / HNSW): recall recorded = recall from exact search, train-only training, cache."""

import faiss
import numpy as np
import pytest
import torch

from featx.cache import FeatureStore
from featx.evaluation.features import ProbeError, load_probe_data
from featx.evaluation.selection import Splits
from featx.probes import ann, knn
from featx.probes.protocol import evaluate_knn
from featx.probes.runner import outcome_records
from tests.cache.test_remote import publish_toy_store


def clustered(n_bank=1500, n_test=200, d=24, clusters=30, seed=0):
    """Unit vectors around ``clusters`` centres: neighbours an IVF with few probes misses now and then."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    points = centres[rng.integers(0, clusters, n_bank + n_test)] + rng.normal(0, 0.6, (n_bank + n_test, d))
    points = knn.l2_normalise(points).numpy()
    is_train = np.zeros(n_bank, bool)
    is_train[: int(n_bank * 0.8)] = True
    return points[:n_bank], is_train, points[n_bank:]


def exact_recall(approx_idx, test, bank, k):
    truth = torch.topk(torch.as_tensor(test) @ torch.as_tensor(bank).T, k, dim=1).indices.numpy()
    return np.mean([len(set(a) & set(t)) / k for a, t in zip(approx_idx[:, :k], truth)])


@pytest.mark.parametrize("spec", ["ivf:nlist=32,nprobe=2", "hnsw:m=4,ef_construction=40,ef_search=8"])
def test_the_recorded_recall_equals_the_recall_computed_from_exact_search(spec):
    bank, is_train, test = clustered()
    found = knn.protocol_neighbours(bank, is_train, test, 20, with_selection=True, with_fit=False,
                                    index=ann.ApproxIndex.parse(spec))
    recall = exact_recall(found.final_test.idx.numpy(), test, bank, 20)
    assert found.approx["knn_recall_at_k"] == pytest.approx(recall, abs=1e-12)
    assert 0.3 < recall < 1.0  # approximate, and measured as such
    assert found.approx["knn_recall_k"] == 20 and found.approx["knn_recall_queries"] == len(test)
    assert found.approx["knn_index"] == spec and found.approx["knn_index_cached"] is False
    exact = knn.protocol_neighbours(bank, is_train, test, 20, with_selection=True, with_fit=False)
    assert exact.approx == {}


def test_recall_is_measured_on_a_seeded_sample_of_the_test_queries():
    bank, is_train, test = clustered()
    spec = ann.ApproxIndex("ivf", nlist=32, nprobe=2, recall_queries=50)
    found = knn.protocol_neighbours(bank, is_train, test, 10, with_selection=False, with_fit=False, index=spec, seed=3)
    chosen = np.sort(np.random.default_rng(3).choice(len(test), 50, replace=False))
    recall = exact_recall(found.final_test.idx.numpy()[chosen], test[chosen], bank, 10)
    assert found.approx["knn_recall_queries"] == 50
    assert found.approx["knn_recall_at_k"] == pytest.approx(recall, abs=1e-12)


def test_ivf_is_trained_on_the_train_rows_only():
    bank, is_train, _ = clustered()
    other = bank.copy()
    other[~is_train] = knn.l2_normalise(np.random.default_rng(9).normal(size=((~is_train).sum(), bank.shape[1]))).numpy()
    spec = ann.ApproxIndex("ivf", nlist=16)
    built = [ann.build_or_load(spec, b, is_train) for b in (bank, other)]
    centroids = [faiss.extract_index_ivf(b.index).quantizer.reconstruct_n(0, 16) for b in built]
    np.testing.assert_array_equal(centroids[0], centroids[1])  # val rows changed, the training did not
    assert ann.build_or_load(spec, bank, is_train).index.ntotal == len(bank)  # train+val are searched


def test_a_built_index_is_cached_by_version_and_parameters_and_reloaded(tmp_path):
    bank, is_train, test = clustered()
    spec = ann.ApproxIndex("ivf", nlist=16, nprobe=2, cache=tmp_path, version=3)
    first = ann.build_or_load(spec, bank, is_train)
    assert not first.loaded and first.path.parent == tmp_path and first.path.name.startswith("v0003-ivf-nlist16-")
    again = ann.build_or_load(spec, bank, is_train)
    assert again.loaded and again.path == first.path
    np.testing.assert_array_equal(again.search(test, 10)[1], first.search(test, 10)[1])
    other = ann.build_or_load(ann.ApproxIndex("ivf", nlist=8, cache=tmp_path, version=3), bank, is_train)
    changed = bank.copy()
    changed[0] = changed[1]
    rebuilt = ann.build_or_load(spec, changed, is_train)
    assert not other.loaded and not rebuilt.loaded and len({first.path, other.path, rebuilt.path}) == 3


def test_every_record_of_a_store_carries_the_recall_and_a_rerun_loads_the_index_beside_the_store(tmp_path):
    pointer = publish_toy_store(tmp_path, n=80)
    store = FeatureStore.open(pointer)
    data = load_probe_data(store)
    spec = ann.ApproxIndex.parse("ivf:nlist=4,nprobe=1").beside(data.provenance)
    assert spec.cache == pointer.parent / f"{store.key}.ann" and spec.version == 1
    runs = []
    for _ in range(2):
        outcome = evaluate_knn(Splits(data, allow_test_reuse=True), ks=(5, 10), multilabel_method="weighted",
                               index=spec, n_boot=10, val_boot=10)
        runs.append(outcome_records(outcome, data.provenance, data, seed=0))
    records = runs[0]
    assert {r["split"] for r in records} == {"test", "val"}
    assert all("knn_recall_at_k" in r and r["hyperparameters"]["knn_index"] == "ivf:nlist=4,nprobe=1" for r in records)
    assert [r["knn_index_cached"] for r in (runs[0][0], runs[1][0])] == [False, True]
    assert [r["value"] for r in runs[0]] == [r["value"] for r in runs[1]]
    assert len(list(spec.cache.glob("v0001-ivf-nlist4-*.faiss"))) == 1


@pytest.mark.parametrize("text,message", [("annoy", "expected one of ivf, hnsw"), ("ivf:nlist=x", "NAME=INTEGER"),
                                          ("hnsw:m=0", "must be at least 1")])
def test_a_bad_index_option_is_one_sentence(text, message):
    with pytest.raises(ProbeError, match=message):
        ann.ApproxIndex.parse(text)

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from featx.evaluation.features import ProbeError
from featx.evaluation.selection import NoValidationSplit, Splits
from featx.probes.protocol import evaluate_knn, evaluate_linear, knn_neighbours

from .conftest import noise_data, planted_data


@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel"])
def test_knn_separable_near_one_noise_near_half(task):
    sep = evaluate_knn(Splits(planted_data(task=task, signal=4.0, n_patients=200)), ks=(10, 20), n_boot=50)
    noise = evaluate_knn(Splits(noise_data(task=task, n_patients=200)), ks=(10, 20), n_boot=50)
    assert sep.test.auroc_macro > 0.97
    assert 0.35 < noise.test.auroc_macro < 0.65
    assert sep.method == ("mlknn" if task == "multilabel" else "weighted_knn")
    assert sep.hyperparameters["k"] in (10, 20) and sep.hyperparameters["selected_on"] == "val"
    assert [h["k"] for h, _ in sep.val] == [10, 20]
    assert sep.n_train == int((planted_data(task=task, n_patients=200).split != "test").sum())


def test_knn_selection_uses_val_only_and_test_once():
    data = planted_data(task="multiclass", signal=1.0, n_patients=200)
    splits = Splits(data)
    out = evaluate_knn(splits, ks=(10, 20, 100), n_boot=20)
    best_val = max(s.auroc_macro for _, s in out.val)
    chosen = [h["k"] for h, s in out.val if s.auroc_macro == best_val][0]
    assert out.hyperparameters["k"] == chosen
    with pytest.raises(Exception, match="already scored"):
        splits.score_test_once("knn", lambda t: np.zeros((t.n, 3)))


def _vote_by_hand(queries, bank, bank_labels, k, kmax, renormalised=False, T=0.07):
    """DINOv2 eval/knn.py from its definition: softmax(sim / T) over the top kmax = max(ks) once,
    class score = sum of the first k of those weights (``renormalised``: softmax over the k only)."""
    sims = queries.astype(np.float64) @ bank.astype(np.float64).T
    idx = np.argsort(-sims, 1, kind="stable")[:, :kmax]
    top = np.take_along_axis(sims, idx, 1)[:, : k if renormalised else kmax]
    w = np.exp((top - top[:, :1]) / T)
    w /= w.sum(1, keepdims=True)
    return np.einsum("qk,qkc->qc", w[:, :k], bank_labels[idx[:, :k]])


def _knn_protocol_by_hand(data, ks, renormalised=False):
    """Choose k on val (bank: train), score test with train+val: chosen k and per-class test AUROC."""
    f = data.blocks[f"cls/{data.layers[-1]}"].astype(np.float32)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    y = data.labels
    train, val, test = (data.split == s for s in ("train", "val", "test"))
    macro = lambda yy, pp: np.mean([roc_auc_score(yy[:, c], pp[:, c]) for c in range(yy.shape[1])])  # noqa: E731
    val_scores = [macro(y[val], _vote_by_hand(f[val], f[train], y[train], k, max(ks), renormalised)) for k in ks]
    chosen = ks[int(np.argmax(val_scores))]
    bank = train | val
    probs = _vote_by_hand(f[test], f[bank], y[bank], chosen, max(ks), renormalised)
    return chosen, np.array([roc_auc_score(y[test][:, c], probs[:, c]) for c in range(y.shape[1])])


def test_knn_vote_and_chosen_k_are_dinov2s_computed_by_hand():
    """The default vote is DINOv2's (softmax over max(ks) once); on these features the per-k
    renormalised vote picks another k and gives other test AUROCs, so the hand computation tells them apart."""
    data = planted_data(task="multiclass", signal=0.6, n_patients=160, dim=16, seed=0)
    ks = (5, 20, 60)
    k_dinov2, auroc_dinov2 = _knn_protocol_by_hand(data, ks)
    k_renorm, auroc_renorm = _knn_protocol_by_hand(data, ks, renormalised=True)
    assert k_dinov2 != k_renorm  # the two votes disagree on these features
    out = evaluate_knn(Splits(data), ks=ks, n_boot=0)
    assert out.hyperparameters["k"] == k_dinov2
    assert out.hyperparameters["vote"] == "dinov2" and out.hyperparameters["softmax_over"] == max(ks)
    np.testing.assert_allclose(out.test.auroc, auroc_dinov2, atol=1e-9)
    renorm = evaluate_knn(Splits(data, allow_test_reuse=True), ks=ks, n_boot=0, vote="renormalised")
    assert renorm.hyperparameters["k"] == k_renorm and renorm.hyperparameters["vote"] == "renormalised"
    np.testing.assert_allclose(renorm.test.auroc, auroc_renorm, atol=1e-9)


def test_knn_multilabel_weighted_alternative():
    out = evaluate_knn(Splits(planted_data(task="multilabel", signal=4.0)), ks=(10,), multilabel_method="weighted", n_boot=20)
    assert out.method == "weighted_knn" and out.test.auroc_macro > 0.9


def test_one_search_serves_several_settings():
    """ML-kNN and the weighted vote from one knn_neighbours call equal their own searches."""
    data = planted_data(task="multilabel", signal=1.0, n_patients=200)
    found = knn_neighbours(Splits(data), 20, selecting=True, fit=True)
    for method in ("mlknn", "weighted"):
        alone = evaluate_knn(Splits(data), ks=(10, 20), multilabel_method=method, n_boot=20)
        shared = evaluate_knn(Splits(data), ks=(10, 20), multilabel_method=method, n_boot=20, neighbours=found)
        assert shared.hyperparameters == alone.hyperparameters
        np.testing.assert_allclose(shared.test.auroc, alone.test.auroc)
    too_short = knn_neighbours(Splits(data), 10, selecting=True, fit=False)
    with pytest.raises(ProbeError, match="different kNN setting"):
        evaluate_knn(Splits(data), ks=(10, 20), neighbours=too_short)


def test_fixed_k_needs_no_val_but_selection_does():
    data = planted_data(task="multiclass")
    data.split[data.split == "val"] = "train"
    out = evaluate_knn(Splits(data), k=10, n_boot=20)
    assert out.hyperparameters["selected_on"] == "fixed"
    with pytest.raises(NoValidationSplit):
        evaluate_knn(Splits(data), ks=(10, 20), n_boot=20)
    with pytest.raises(NoValidationSplit):
        evaluate_linear(Splits(data), n_boot=20)


@pytest.mark.parametrize("backend", ["torch", "sklearn"])
def test_linear_grid_separable_and_noise(backend):
    sep = evaluate_linear(Splits(planted_data(task="multilabel", signal=3.0, n_patients=150, dim=16)), backend=backend, n_boot=50, batch_size=32)
    noise = evaluate_linear(Splits(noise_data(task="multilabel", n_patients=150, dim=16)), backend=backend, n_boot=50, batch_size=32)
    assert sep.test.auroc_macro > 0.97
    assert 0.35 < noise.test.auroc_macro < 0.65
    assert len(sep.val) == (16 if backend == "torch" else 12)
    assert sep.hyperparameters["retrained_on"] == "train+val"


def test_knn_backends_agree_on_auroc():
    data = planted_data(task="multiclass", signal=1.0, n_patients=200)
    a = evaluate_knn(Splits(data), k=20, backend="faiss", n_boot=0)
    b = evaluate_knn(Splits(data), k=20, backend="torch", n_boot=0)
    assert a.test.auroc_macro == pytest.approx(b.test.auroc_macro, abs=1e-4)


def test_fixed_seed_reproducible():
    data = planted_data(task="multiclass", signal=1.0, n_patients=120, dim=8)
    a = evaluate_linear(Splits(data), seed=4, n_boot=50, batch_size=32)
    b = evaluate_linear(Splits(data), seed=4, n_boot=50, batch_size=32)
    assert a.test.auroc_macro == b.test.auroc_macro and a.test.auroc_macro_ci == b.test.auroc_macro_ci
    assert a.hyperparameters == b.hyperparameters


def test_knn_protocol_on_cuda_matches_cpu():
    """The whole kNN / ML-kNN protocol on a GPU (search and every step after it) equals the CPU run."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    data = planted_data(task="multilabel", signal=1.0, n_patients=200)
    cpu = evaluate_knn(Splits(data), ks=(10, 20), backend="torch", n_boot=20)
    gpu = evaluate_knn(Splits(data), ks=(10, 20), backend="torch", device="cuda", n_boot=20)
    assert gpu.hyperparameters["k"] == cpu.hyperparameters["k"]
    np.testing.assert_allclose(gpu.test.auroc, cpu.test.auroc, atol=1e-4)

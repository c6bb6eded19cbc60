import numpy as np
import pytest

from featx.evaluation.features import ProbeError
from featx.probes.protocol import evaluate_knn, evaluate_linear, knn_neighbours
from featx.evaluation.selection import NoValidationSplit, Splits

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

import importlib.util
import math

import numpy as np
import pytest

from featx.evaluation.metrics import selection_score
from featx.probes.linear import LinearConfig, LogisticProbe, TorchGrid, fit_predict, protocol_grid

from .conftest import planted


def test_protocol_grid_is_the_papers():
    grid = protocol_grid(4)
    assert len(grid) == 16
    assert {c.lr for c in grid} == {1e-3, 5e-3, 1e-2, 5e-2}
    assert {(c.n_last_blocks, c.avgpool) for c in grid} == {(1, False), (1, True), (4, False), (4, True)}
    assert {c.n_last_blocks for c in protocol_grid(1)} == {1}  # a one-layer store (CNN)


@pytest.mark.parametrize("task", ["multilabel", "multiclass", "binary"])
def test_torch_grid_learns_planted_signal(task):
    p = planted(task=task, n_patients=150, dim=24, signal=2.0, n_classes=3)
    train, test = np.flatnonzero(p["split"] != "test"), np.flatnonzero(p["split"] == "test")
    dims = {k: v.shape[1] for k, v in p["blocks"].items()}
    grid = protocol_grid(4)
    model = TorchGrid(grid, p["layers"], dims, p["labels"].shape[1], task, seed=0)
    model.fit(p["blocks"], train, p["labels"][train], epochs=10, batch_size=32)
    probs = model.predict(p["blocks"], test)
    assert probs.shape == (len(test), 16, p["labels"].shape[1])
    best = max(selection_score(p["labels"][test], probs[:, g]) for g in range(16))
    assert best > 0.95
    if task != "multilabel":
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_grid_heads_are_independent():
    """A head trained in the grid equals the same head trained alone on the same batches."""
    p = planted(task="multilabel", n_patients=60, dim=8)
    rows = np.flatnonzero(p["split"] == "train")
    test = np.flatnonzero(p["split"] == "test")
    dims = {k: v.shape[1] for k, v in p["blocks"].items()}
    grid, g = protocol_grid(4), 5
    together = TorchGrid(grid, p["layers"], dims, 3, "multilabel", seed=1)
    alone = TorchGrid([grid[g]], p["layers"], dims, 3, "multilabel", seed=1)
    alone.set_head_weights(0, together.head_weights(g))  # same initial weights for config g
    together.generator.manual_seed(0)
    alone.generator.manual_seed(0)  # same batch order
    together.fit(p["blocks"], rows, p["labels"][rows], epochs=2, batch_size=16)
    alone.fit(p["blocks"], rows, p["labels"][rows], epochs=2, batch_size=16)
    np.testing.assert_allclose(alone.predict(p["blocks"], test)[:, 0], together.predict(p["blocks"], test)[:, g], atol=1e-5)


@pytest.mark.parametrize("task", ["multilabel", "multiclass", "binary"])
def test_closed_form_step_equals_autograd_sgd(task):
    """The grid's hand-written gradients and update equal nn.Linear + autograd + torch.optim.SGD
    (momentum 0.9, cosine per iteration) on the same batches: the paper's training loop."""
    torch = pytest.importorskip("torch")
    p = planted(task=task, n_patients=40, dim=6, n_classes=3)
    rows = np.flatnonzero(p["split"] == "train")
    dims = {k: v.shape[1] for k, v in p["blocks"].items()}
    cfg = LinearConfig(4, True, lr=0.05)
    grid = TorchGrid([cfg], p["layers"], dims, 3, task, seed=2)
    names = list(grid.head_weights(0))
    x = torch.from_numpy(np.concatenate([p["blocks"][k][rows] for k in names], 1)).float()
    labels = p["labels"][rows]
    head = torch.nn.Linear(x.shape[1], grid.n_out)
    with torch.no_grad():
        head.weight.copy_(torch.cat([grid.head_weights(0)[k] for k in names], 0).T)
        head.bias.zero_()
    epochs, batch = 3, 8
    total = epochs * math.ceil(len(rows) / batch)
    optimiser = torch.optim.SGD(head.parameters(), lr=cfg.lr, momentum=0.9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    if task == "multiclass":
        target, loss_fn = torch.from_numpy(labels.argmax(1)), torch.nn.CrossEntropyLoss()
    else:
        target = torch.from_numpy(labels[:, 1:2] if task == "binary" else labels).float()
        loss_fn = torch.nn.BCEWithLogitsLoss()
    order_source = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=order_source)
        for start in range(0, len(rows), batch):
            idx = order[start : start + batch]
            optimiser.zero_grad()
            loss_fn(head(x[idx]), target[idx]).backward()
            optimiser.step()
            schedule.step()
    grid.generator.manual_seed(0)
    grid.fit(p["blocks"], rows, labels, epochs=epochs, batch_size=batch)
    fitted = torch.cat([grid.head_weights(0)[k] for k in names], 0).T
    np.testing.assert_allclose(fitted.numpy(), head.weight.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(grid.bias.numpy(), head.bias.detach().numpy(), atol=1e-5)


def test_torch_fixed_seed_is_reproducible():
    p = planted(task="multiclass", n_patients=60, dim=8)
    rows = np.flatnonzero(p["split"] == "train")
    cfg = LinearConfig(4, True, lr=0.01)
    a = fit_predict(cfg, "multiclass", p["blocks"], p["layers"], rows, p["labels"][rows], [rows], seed=3)[0]
    b = fit_predict(cfg, "multiclass", p["blocks"], p["layers"], rows, p["labels"][rows], [rows], seed=3)[0]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("task", ["multilabel", "multiclass", "binary"])
def test_sklearn_reference_separable_and_noise(task):
    sep = planted(task=task, n_patients=200, dim=16, signal=4.0)
    noise = planted(task=task, n_patients=200, dim=16, signal=0.0)
    for p, lo, hi in ((sep, 0.97, 1.0), (noise, 0.35, 0.65)):
        tr, te = p["split"] != "test", p["split"] == "test"
        x = p["blocks"]["cls/block_3"]
        probe = LogisticProbe(task).fit(x[tr], p["labels"][tr])
        auc = selection_score(p["labels"][te], probe.predict(x[te]))
        assert lo <= auc <= hi


def test_torch_agrees_with_sklearn_reference():
    """Parity: on the same features the protocol's SGD probe and sklearn reach the same AUROC (+-0.03)."""
    p = planted(task="multilabel", n_patients=300, dim=16, signal=1.0)
    tr, te = np.flatnonzero(p["split"] != "test"), np.flatnonzero(p["split"] == "test")
    ref = fit_predict(LinearConfig(1, False, C=1.0), "multilabel", p["blocks"], p["layers"], tr, p["labels"][tr], [te], backend="sklearn")[0]
    got = fit_predict(LinearConfig(1, False, lr=0.05), "multilabel", p["blocks"], p["layers"], tr, p["labels"][tr], [te], backend="torch", epochs=30, batch_size=32)[0]
    a, b = selection_score(p["labels"][te], ref), selection_score(p["labels"][te], got)
    assert a > 0.8 and abs(a - b) < 0.03


@pytest.mark.skipif(importlib.util.find_spec("cuml") is None, reason="cuML not installed")
def test_cuml_matches_sklearn():
    p = planted(task="multilabel", n_patients=300, dim=16, signal=1.0)
    tr, te = np.flatnonzero(p["split"] != "test"), np.flatnonzero(p["split"] == "test")
    cfg = LinearConfig(1, False, C=1.0)
    ref = fit_predict(cfg, "multilabel", p["blocks"], p["layers"], tr, p["labels"][tr], [te], backend="sklearn")[0]
    got = fit_predict(cfg, "multilabel", p["blocks"], p["layers"], tr, p["labels"][tr], [te], backend="cuml")[0]
    np.testing.assert_allclose(got, ref, atol=0.02)


def test_torch_cuda_matches_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    p = planted(task="multiclass", n_patients=100, dim=8)
    rows = np.flatnonzero(p["split"] == "train")
    cfg = LinearConfig(4, True, lr=0.01)
    a = fit_predict(cfg, "multiclass", p["blocks"], p["layers"], rows, p["labels"][rows], [rows], seed=3)[0]
    b = fit_predict(cfg, "multiclass", p["blocks"], p["layers"], rows, p["labels"][rows], [rows], seed=3, device="cuda")[0]
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_single_class_column_predicts_constant():
    x = np.random.default_rng(0).normal(size=(20, 4))
    y = np.zeros((20, 2))
    y[:10, 0] = 1
    out = LogisticProbe("multilabel").fit(x, y).predict(x)
    assert np.allclose(out[:, 1], 0.0)

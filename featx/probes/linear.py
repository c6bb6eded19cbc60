"""Linear probes on cached features.

* ``torch`` (default, the paper's protocol): the grid lr {1e-3, 5e-3, 1e-2, 5e-2} x
  n_last_blocks {1, 4} x avgpool {on, off}, all 16 heads trained **together** on the same
  mini-batches (one weight slab per cached block; a head's logits are the sum over the
  blocks its configuration concatenates, which equals one linear layer on the
  concatenation). SGD momentum 0.9, cosine decay to 0 per iteration, 10 epochs,
  batch 128, weights N(0, 0.01), bias 0, no weight decay, learning rates used as given
  (not rescaled by batch size). Multi-label: per-class BCE (unknown labels masked);
  binary: BCE on one logit; multi-class: CE. Features are cached, so there is no image
  augmentation. CPU or GPU.
* ``sklearn``: ``LogisticRegression`` (L-BFGS, standardised features), one-vs-rest for
  multi-label; the reference the other backends are checked against; its grid is
  C {0.1, 1, 10} x n_last_blocks x avgpool.
* ``cuml``: the same model as ``sklearn`` on a GPU where cuML is installed.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from featx.evaluation.features import ProbeError, block_names
from featx.probes.job import LINEAR_LRS

BACKENDS = ("torch", "sklearn", "cuml")
LRS = LINEAR_LRS
CS = (0.1, 1.0, 10.0)
N_LAST_BLOCKS = (1, 4)
AVGPOOL = (False, True)


@dataclass(frozen=True)
class LinearConfig:
    n_last_blocks: int = 1
    avgpool: bool = False
    lr: float | None = None  # torch (SGD)
    C: float | None = None  # sklearn / cuml (inverse L2 strength)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def protocol_grid(
    n_layers: int, backend: str = "torch", lrs: Sequence[float] = LRS, cs: Sequence[float] = CS
) -> list[LinearConfig]:
    """The paper's grid, limited to the layers a store holds (a 1-layer store: n_last_blocks 1)."""
    blocks = sorted({min(n, n_layers) for n in N_LAST_BLOCKS})
    if backend == "torch":
        return [LinearConfig(n, pool, lr=lr) for lr in lrs for n in blocks for pool in AVGPOOL]
    return [LinearConfig(n, pool, C=c) for c in cs for n in blocks for pool in AVGPOOL]


def cuml_available() -> bool:
    return importlib.util.find_spec("cuml") is not None


def pick_backend(device: str = "cpu", backend: str | None = None) -> str:
    if backend is None:
        return "torch"
    if backend not in BACKENDS:
        raise ProbeError(f"unknown linear backend {backend!r}; expected one of {BACKENDS}")
    if backend == "cuml" and not cuml_available():
        raise ProbeError("linear backend 'cuml' is not installed (RAPIDS cuML needs a GPU)")
    if backend == "sklearn" and importlib.util.find_spec("sklearn") is None:
        raise ProbeError("linear backend 'sklearn' is not installed")
    return backend


def _to_scores(task: str, outputs: np.ndarray) -> np.ndarray:
    """(n, C) class scores from per-class / per-positive probabilities."""
    if task == "binary":
        p = outputs.reshape(-1)
        return np.stack([1 - p, p], 1)
    return outputs


# ---------------------------------------------------------------------------------------------
# scikit-learn / cuML logistic regression
# ---------------------------------------------------------------------------------------------
class LogisticProbe:
    """One logistic regression per label (multi-label), one multinomial (multi-class), one binary."""

    def __init__(self, task: str, C: float = 1.0, backend: str = "sklearn", max_iter: int = 1000, seed: int = 0):
        self.task, self.C, self.backend, self.max_iter, self.seed = task, C, backend, max_iter, seed

    def _model(self):
        if self.backend == "cuml":
            from cuml.linear_model import LogisticRegression  # type: ignore[import-not-found]

            return LogisticRegression(C=self.C, max_iter=self.max_iter)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed)

    def fit(self, X: np.ndarray, labels: np.ndarray) -> LogisticProbe:
        X = np.asarray(X, dtype=np.float32)
        self.mean = X.mean(0)
        self.std = X.std(0) + 1e-6
        Z = (X - self.mean) / self.std
        self.models: list = []
        self.constants: list[float | None] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on tiny few-shot sets
            if self.task == "multiclass":
                y = np.argmax(labels, 1)
                present = np.unique(y)
                self.present = present
                self.n_classes = labels.shape[1]
                if present.size < 2:
                    self.models, self.constants = [None], [float(present[0])]
                else:
                    self.models = [self._model().fit(Z, y)]
                return self
            columns = [labels[:, 1]] if self.task == "binary" else [labels[:, c] for c in range(labels.shape[1])]
            for y in columns:
                known = ~np.isnan(y)
                yk = y[known].astype(int)
                if known.sum() == 0 or np.unique(yk).size < 2:
                    self.models.append(None)
                    self.constants.append(float(yk.mean()) if yk.size else 0.5)
                else:
                    self.models.append(self._model().fit(Z[known], yk))
                    self.constants.append(None)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, dtype=np.float32) - self.mean) / self.std
        if self.task == "multiclass":
            out = np.zeros((Z.shape[0], self.n_classes))
            if self.models[0] is None:
                out[:, int(self.constants[0])] = 1.0
            else:
                out[:, self.present] = np.asarray(self.models[0].predict_proba(Z))
            return out
        cols = []
        for model, constant in zip(self.models, self.constants):
            cols.append(np.full(Z.shape[0], constant) if model is None else np.asarray(model.predict_proba(Z))[:, 1])
        return _to_scores(self.task, np.stack(cols, 1))


# ---------------------------------------------------------------------------------------------
# torch: the whole SGD grid at once
# ---------------------------------------------------------------------------------------------
class TorchGrid:
    """Linear heads of several configurations trained together on shared mini-batches.

    The used cached blocks are concatenated into one ``(n, D)`` matrix and every head is a
    column group of one ``(D, G * O)`` weight matrix whose rows outside the head's blocks are
    zero and stay zero (their gradient is masked). One step is then one gather, one
    ``addmm`` forward, the loss gradient in closed form (BCE or softmax CE with logits), one
    matmul backward and an in-place SGD-momentum update: about twenty kernels whatever the
    grid size, which is what keeps a GPU busy on ~13,000 tiny steps.
    """

    def __init__(
        self,
        configs: Sequence[LinearConfig],
        layers: list[str],
        dims: dict[str, int],
        n_classes: int,
        task: str,
        *,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        import torch

        if not configs:
            raise ProbeError("no linear configurations to train")
        if any(c.lr is None for c in configs):
            raise ProbeError("torch linear configurations need a learning rate")
        self.configs = list(configs)
        self.task = task
        self.device = device
        self.n_out = 1 if task == "binary" else n_classes
        self.n_classes = n_classes
        uses: dict[str, list[int]] = {}
        for g, config in enumerate(self.configs):
            for name in block_names(layers, config.n_last_blocks, config.avgpool):
                uses.setdefault(name, []).append(g)
        self.uses = uses
        self.rows: dict[str, slice] = {}  # block -> its rows of the weight matrix
        start = 0
        for name in uses:
            self.rows[name] = slice(start, start + dims[name])
            start += dims[name]
        n_heads, out = len(self.configs), self.n_out
        self.generator = torch.Generator().manual_seed(seed)
        weight = torch.zeros(start, n_heads * out)
        mask = torch.zeros(start, n_heads * out)
        for name, heads in uses.items():  # N(0, 0.01) for the (block, head) pairs in use
            init = torch.randn(dims[name], len(heads) * out, generator=self.generator) * 0.01
            for pos, g in enumerate(heads):
                weight[self.rows[name], g * out : (g + 1) * out] = init[:, pos * out : (pos + 1) * out]
                mask[self.rows[name], g * out : (g + 1) * out] = 1.0
        self.weight = weight.to(device)
        self.mask = mask.to(device)
        self.bias = torch.zeros(n_heads * out, device=device)
        lrs = torch.tensor([c.lr for c in self.configs], dtype=torch.float32)
        self.lr = lrs.repeat_interleave(out).to(device)  # one learning rate per output column

    def head_weights(self, g: int) -> dict[str, object]:
        """Head ``g``'s weight slab per cached block it reads (a view)."""
        cols = slice(g * self.n_out, (g + 1) * self.n_out)
        return {name: self.weight[rows, cols] for name, rows in self.rows.items() if g in self.uses[name]}

    def set_head_weights(self, g: int, weights: dict[str, object]) -> None:
        """Overwrite head ``g``'s weights (same blocks and shapes as :meth:`head_weights`)."""
        for name, view in self.head_weights(g).items():
            view.copy_(weights[name])

    def _inputs(self, blocks: dict[str, np.ndarray], rows: np.ndarray):
        """``blocks[name][rows]`` of every used block side by side, on the device, stored dtype."""
        import torch

        dtype = np.result_type(*(blocks[name].dtype for name in self.rows))
        out = np.empty((len(rows), self.weight.shape[0]), dtype=dtype)
        for name, cols in self.rows.items():
            out[:, cols] = blocks[name][rows]
        return torch.from_numpy(out).to(self.device)

    def _targets(self, labels: np.ndarray):
        """Per-column targets and known-label mask, repeated for every head: ``(n, G * O)`` each."""
        import torch

        labels = np.asarray(labels, dtype=np.float32)
        heads = len(self.configs)
        if self.task == "multiclass":
            onehot = np.eye(self.n_classes, dtype=np.float32)[np.argmax(labels, 1)]
            return torch.from_numpy(np.tile(onehot, heads)).to(self.device), None
        lab = labels[:, 1:2] if self.task == "binary" else labels
        known = (~np.isnan(lab)).astype(np.float32)
        target = np.tile(np.nan_to_num(lab), heads)
        return torch.from_numpy(target).to(self.device), torch.from_numpy(np.tile(known, heads)).to(self.device)

    def _logit_grad(self, logits, target, known):
        """d loss / d logits: per-class BCE over known labels (mean), or softmax CE (mean)."""
        import torch

        if self.task == "multiclass":
            batch = logits.shape[0]
            probs = torch.softmax(logits.view(batch, len(self.configs), self.n_out), -1).view(batch, -1)
            return probs.sub_(target).div_(batch)
        grad = torch.sigmoid(logits).sub_(target).mul_(known)
        return grad.div_((known.sum() / len(self.configs)).clamp_min(1.0))

    def fit(
        self,
        blocks: dict[str, np.ndarray],
        rows: np.ndarray,
        labels: np.ndarray,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        momentum: float = 0.9,
    ) -> TorchGrid:
        """Train on ``blocks[name][rows]`` with ``labels`` (aligned with ``rows``).

        SGD with momentum (PyTorch's rule: ``buf = momentum * buf + grad``, ``w -= lr * buf``),
        learning rate decayed by a cosine to 0 over all iterations.
        """
        import torch

        n = len(rows)
        if n == 0:
            raise ProbeError("no training rows for the linear probe")
        inputs = self._inputs(blocks, rows)  # float16 stays float16 on the device; batches are upcast
        target_all, known_all = self._targets(labels)
        buf_weight, buf_bias = torch.zeros_like(self.weight), torch.zeros_like(self.bias)
        total = epochs * math.ceil(n / batch_size)
        step = 0
        with torch.no_grad():
            for _ in range(epochs):
                order = torch.randperm(n, generator=self.generator).to(self.device)
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    x = inputs[idx].float()
                    known = None if known_all is None else known_all[idx]
                    grad = self._logit_grad(torch.addmm(self.bias, x, self.weight), target_all[idx], known)
                    buf_weight.mul_(momentum).add_(x.T.mm(grad).mul_(self.mask))
                    buf_bias.mul_(momentum).add_(grad.sum(0))
                    factor = -0.5 * (1 + math.cos(math.pi * step / total))
                    self.weight.addcmul_(buf_weight, self.lr, value=factor)
                    self.bias.addcmul_(buf_bias, self.lr, value=factor)
                    step += 1
        return self

    def predict(self, blocks: dict[str, np.ndarray], rows: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """``(n, G, C)`` class scores of every configuration."""
        import torch

        heads = len(self.configs)
        outs = []
        with torch.no_grad():
            for start in range(0, len(rows), chunk):
                x = self._inputs(blocks, rows[start : start + chunk]).float()
                logits = torch.addmm(self.bias, x, self.weight).view(x.shape[0], heads, self.n_out)
                if self.task == "multiclass":
                    outs.append(torch.softmax(logits, -1).cpu().numpy())
                else:
                    p = torch.sigmoid(logits).cpu().numpy()
                    outs.append(np.concatenate([1 - p, p], -1) if self.task == "binary" else p)
        return np.concatenate(outs, 0) if outs else np.zeros((0, heads, self.n_classes))


def fit_predict(
    config: LinearConfig,
    task: str,
    blocks: dict[str, np.ndarray],
    layers: list[str],
    train_rows: np.ndarray,
    train_labels: np.ndarray,
    predict_rows: Sequence[np.ndarray],
    *,
    backend: str = "torch",
    device: str = "cpu",
    seed: int = 0,
    epochs: int = 10,
    batch_size: int = 128,
) -> list[np.ndarray]:
    """Fit one configuration and return the class scores of each group of ``predict_rows``."""

    def concat(rows: np.ndarray) -> np.ndarray:
        parts = [blocks[name][rows] for name in block_names(layers, config.n_last_blocks, config.avgpool)]
        return np.concatenate(parts, 1).astype(np.float32)

    if backend == "torch":
        dims = {name: blocks[name].shape[1] for name in blocks}
        grid = TorchGrid([config], layers, dims, train_labels.shape[1], task, device=device, seed=seed)
        grid.fit(blocks, train_rows, train_labels, epochs=epochs, batch_size=batch_size)
        return [grid.predict(blocks, rows)[:, 0] for rows in predict_rows]
    probe = LogisticProbe(task, C=config.C if config.C is not None else 1.0, backend=backend, seed=seed)
    probe.fit(concat(train_rows), train_labels)
    return [probe.predict(concat(rows)) for rows in predict_rows]


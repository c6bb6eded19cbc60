"""Training and scoring a segmentation model on pixels: validation Dice chooses, test is scored once.

Shared by segmentation fine-tuning (the probes' decoders on a trainable backbone) and the
scratch baselines. Training runs inside ``Splits.selecting()`` and reads the masks of train and
val rows only (:class:`featx.finetune.data.SealedMasks`); the best epoch and early stopping go by
the macro Dice per unit (image or volume) on validation; the test split is scored once through
``Splits.score_test_once`` (entered in the test-use ledger), whose scorer alone reads the test
masks, with the shared metrics (:mod:`featx.evaluation.segmentation`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from featx.evaluation.segmentation import (
    ReassemblyError,
    SegScored,
    confusion_counts,
    score_segmentation,
    selection_dice,
    volume_order,
)
from featx.evaluation.selection import Splits
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.data import Pixels
from featx.finetune.methods import load_trainable_state
from featx.finetune.train import TrainResult, train


@dataclass
class SegFit:
    """The chosen model's test scores, how training went, and what the test-use ledger saw."""

    scored: SegScored
    result: TrainResult
    test_use: dict[str, Any]
    n_train: int
    n_test: int


def check_volumes(pixels: Pixels, dataset: str) -> None:
    """Before training: every volume's readable slices are 0..n-1 (a volume is scored whole)."""
    slices = pixels.volumes != ""
    if slices.any():
        try:
            volume_order(pixels.volumes[slices], pixels.slices[slices], dataset)
        except ReassemblyError as error:
            raise FinetuneError(str(error)) from None


def fit_segmentation(
    model: nn.Module,
    groups: list[dict],
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pixels: Pixels,
    splits: Splits,
    class_names: list[str],
    config: FinetuneConfig,
    *,
    setting: str,
    hyperparameters: dict[str, Any],
    run_dir: Path,
    fingerprint: str,
    device: torch.device,
    n_boot: int,
    progress: bool,
) -> SegFit:
    """Train ``model`` (``loss_of(logits, masks)``) on train rows, choose on val Dice, score test once."""
    masks = pixels.masks
    units, n_classes, eval_batch = pixels.unit_ids, len(class_names), config.batch_size * 2

    def loss_fn(net: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        logits = net(pixels.images[rows].to(device, non_blocking=True)).float()
        return loss_of(logits, masks.read(rows).to(device))

    def predicted(rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rows, arg-max class ids) batch by batch."""
        for start in range(0, len(rows), eval_batch):
            batch = rows[start : start + eval_batch]
            logits = model(pixels.images[torch.as_tensor(batch)].to(device))
            yield batch, logits.float().argmax(1).to(torch.uint8).cpu().numpy()

    def val_dice(_net: nn.Module) -> float:
        val = splits.val.rows
        counts = [confusion_counts(pred, masks.read(batch).numpy(), n_classes) for batch, pred in predicted(val)]
        return selection_dice(np.concatenate(counts), units[val], class_names)

    train_rows = splits.train.rows
    with splits.selecting():
        result = train(model, groups, train_rows, loss_fn, val_dice, config, run_dir=run_dir, fingerprint=fingerprint,
                       device=device, progress=progress)
    load_trainable_state(model, result.best_state)
    model.eval()
    test = splits.test_inputs().rows

    def score(pred: np.ndarray) -> SegScored:
        truth = masks.read(test, sealed_ok=True).numpy()
        return score_segmentation(pred, truth, units[test], pixels.patients[test], class_names=class_names,
                                  unit=pixels.unit_level, n_boot=n_boot, seed=config.seed)

    with torch.no_grad():
        scored = splits.score_test_once(
            setting, lambda inputs: np.concatenate([pred for _, pred in predicted(inputs.rows)]), setting=setting,
            hyperparameters=hyperparameters, seed=config.seed, scorer=score,
        )
    return SegFit(scored, result, splits.test_use(setting).as_record(), int(train_rows.size), int(test.size))

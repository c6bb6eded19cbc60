"""The segmentation decoders' loss: soft Dice over the foreground classes, optionally + cross-entropy.

Soft Dice: softmax probabilities against the one-hot target, summed over the batch's pixels,
background excluded, averaged over classes. ``dice_ce`` adds the pixel cross-entropy. Computed
in float32 whatever the logits' dtype (bf16 under autocast).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("dice", "dice_ce")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, n_classes: int, eps: float = 1.0) -> torch.Tensor:
    """1 - mean over foreground classes of the batch's soft Dice."""
    probs = logits.float().softmax(1)[:, 1:]
    onehot = F.one_hot(target.long(), n_classes).permute(0, 3, 1, 2).float()[:, 1:]
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, n_classes: int, loss: str) -> torch.Tensor:
    """The loss ``loss`` (one of :data:`LOSSES`) of ``(B, C, S, S)`` logits against ``(B, S, S)`` class ids."""
    value = soft_dice_loss(logits, target, n_classes)
    if loss == "dice_ce":
        value = value + F.cross_entropy(logits.float(), target.long())
    return value

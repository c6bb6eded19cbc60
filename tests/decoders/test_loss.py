"""The decoders' loss: soft Dice over the foreground classes, plus cross-entropy where asked."""

import pytest
import torch
import torch.nn.functional as F

from featx.decoders.loss import segmentation_loss, soft_dice_loss


def test_soft_dice_is_near_zero_for_a_confident_right_answer_and_ignores_the_background():
    target = torch.zeros((2, 8, 8), dtype=torch.long)
    target[:, 2:6, 2:6] = 1
    right = F.one_hot(target, 2).permute(0, 3, 1, 2).float() * 20
    assert soft_dice_loss(right, target, 2) < 1e-3
    background_only = torch.zeros_like(right)
    background_only[:, 0] = 20  # every pixel called background: the foreground Dice is 0
    assert soft_dice_loss(background_only, target, 2) == pytest.approx(1.0, abs=0.05)


def test_dice_ce_adds_the_pixel_cross_entropy():
    logits = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    dice = segmentation_loss(logits, target, 3, "dice")
    assert torch.allclose(segmentation_loss(logits, target, 3, "dice_ce"), dice + F.cross_entropy(logits, target))

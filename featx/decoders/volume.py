"""The light 3D decoder on cached multi-scale 3D feature maps.

Per stage a 1x1x1 convolution to class logits (after a per-channel batch norm of the frozen
features, as the 2D linear decoder), upsampled trilinearly to the mask's shape and summed over the
stages: a linear read-out of every stored stage at full resolution, a few thousand parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VolumeLinearDecoder(nn.Module):
    """``forward([(B, F_i, d_i, h_i, w_i), ...]) -> (B, K, D, H, W)`` logits at ``out_shape``."""

    def __init__(self, dims: list[int], n_classes: int, out_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.norms = nn.ModuleList(nn.BatchNorm3d(d) for d in dims)
        self.heads = nn.ModuleList(nn.Conv3d(d, n_classes, kernel_size=1) for d in dims)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        logits = 0
        for fmap, norm, head in zip(maps, self.norms, self.heads):
            logits = logits + F.interpolate(head(norm(fmap)), size=self.out_shape, mode="trilinear", align_corners=False)
        return logits

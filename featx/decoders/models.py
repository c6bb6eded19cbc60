"""The paper's two segmentation decoders on ViT patch tokens (PROTOCOL.md, "Segmentation").

The frozen probes (:mod:`featx.probes.segmentation`) train them on cached tokens; fine-tuning
(:mod:`featx.finetune`) trains them with the backbone in the loop. Both build them here.

* :class:`LinearDecoder`: a 1x1 convolution on the last block's patch grid, logits
  upsampled bilinearly to the mask size.
* :class:`UNetDecoder`: bottleneck = the last block; skips = the 4 blocks before it,
  deepest first. Each of the 4 up steps is a 2x2 transposed convolution (doubling the
  resolution), the skip's tokens through conv3x3-BN-ReLU (at the patch grid, then
  resized bilinearly to the step's resolution), concatenation and conv3x3-BN-ReLU.
  Channels D, D/2, D/4, D/8 (D = the last block's width), then a 1x1 convolution to
  the classes and bilinear resizing to the mask size (the grid is 16x finer by then).

Inputs are the patch tokens of each block as ``(B, h, w, D)`` (as stored), shallow to deep.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _grid(tokens: torch.Tensor) -> torch.Tensor:
    """``(B, h, w, D)`` tokens -> ``(B, D, h, w)`` feature map."""
    return tokens.permute(0, 3, 1, 2).contiguous()


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class LinearDecoder(nn.Module):
    """1x1 conv on the last block's patch grid, bilinear upsampling to ``out_size``."""

    n_blocks = 1

    def __init__(self, dims: Sequence[int], n_classes: int, out_size: int) -> None:
        super().__init__()
        self.out_size = out_size
        self.head = nn.Conv2d(dims[-1], n_classes, 1)

    def forward(self, tokens: Sequence[torch.Tensor]) -> torch.Tensor:
        logits = self.head(_grid(tokens[-1]))
        return F.interpolate(logits, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)


class UNetDecoder(nn.Module):
    """U-Net decoder: last block as bottleneck, the 4 blocks before it as skips."""

    n_blocks = 5

    def __init__(self, dims: Sequence[int], n_classes: int, out_size: int) -> None:
        super().__init__()
        if len(dims) != self.n_blocks:
            raise ValueError(f"the U-Net decoder needs {self.n_blocks} blocks of patch tokens, got {len(dims)}")
        self.out_size = out_size
        width = dims[-1]
        channels = [max(1, width // 2**i) for i in range(4)]  # D, D/2, D/4, D/8
        skip_dims = list(dims[:-1])[::-1]  # deepest skip meets the coarsest step
        self.ups = nn.ModuleList()
        self.skips = nn.ModuleList()
        self.fuse = nn.ModuleList()
        c_in = width
        for c, skip_dim in zip(channels, skip_dims):
            self.ups.append(nn.ConvTranspose2d(c_in, c, 2, stride=2))
            self.skips.append(_conv_bn_relu(skip_dim, c))
            self.fuse.append(_conv_bn_relu(2 * c, c))
            c_in = c
        self.head = nn.Conv2d(c_in, n_classes, 1)

    def forward(self, tokens: Sequence[torch.Tensor]) -> torch.Tensor:
        x = _grid(tokens[-1])
        for up, skip, fuse, skip_tokens in zip(self.ups, self.skips, self.fuse, list(tokens[:-1])[::-1]):
            x = up(x)
            s = skip(_grid(skip_tokens))
            s = F.interpolate(s, size=x.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, s], dim=1))
        logits = self.head(x)
        return F.interpolate(logits, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)


DECODERS: dict[str, type[nn.Module]] = {"seg_linear": LinearDecoder, "seg_unet": UNetDecoder}


def decoder_blocks(setting: str) -> int:
    """How many of the deepest blocks' patch tokens the decoder of ``setting`` reads."""
    if setting not in DECODERS:
        raise ValueError(f"unknown decoder {setting!r}; expected one of {sorted(DECODERS)}")
    return int(DECODERS[setting].n_blocks)


def build_decoder(setting: str, dims: Sequence[int], n_classes: int, out_size: int) -> nn.Module:
    """The decoder of ``setting`` (``seg_linear`` / ``seg_unet``) for blocks of widths ``dims``."""
    if setting not in DECODERS:
        raise ValueError(f"unknown decoder {setting!r}; expected one of {sorted(DECODERS)}")
    return DECODERS[setting](dims, n_classes, out_size)


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters of a decoder (the paper's Table 6 column)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

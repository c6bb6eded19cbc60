"""Segmentation baselines trained from scratch (paper Table 6), from MONAI's networks.

* ``unet``: ``monai.networks.nets.UNet`` in 2D, channels (32, 64, 128, 256, 512), strides
  (2, 2, 2, 2), 2 residual units per level, instance norm, PReLU (MONAI's defaults otherwise).
* ``transunet``: MONAI has no TransUNet; the TransUNet-style model is ``UNETR`` in 2D
  (Hatamizadeh et al. 2022: a ViT encoder, patch 16, hidden 768, MLP 3072, 12 heads,
  12 layers, with a convolutional U-Net decoder fed from the encoder's layers 3, 6, 9, 12;
  feature_size 16, instance norm). Unlike TransUNet it has no ResNet-50 stem.

Both take the slices as 3 replicated channels in [0, 1] and return per-class logits.
``overrides`` change these settings (tests use tiny ones).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from featx.finetune.config import SCRATCH_MODELS, FinetuneError
from featx.finetune.data import as_rgb

UNET_DEFAULTS: dict[str, Any] = {"channels": (32, 64, 128, 256, 512), "strides": (2, 2, 2, 2), "num_res_units": 2}
UNETR_DEFAULTS: dict[str, Any] = {"feature_size": 16, "hidden_size": 768, "mlp_dim": 3072, "num_heads": 12}


class ScratchSegmenter(nn.Module):
    """uint8 ``(B, 1 or 3, S, S)`` -> logits ``(B, classes, S, S)``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(as_rgb(pixels).float() / 255.0)


def build_scratch(name: str, n_classes: int, img_size: int, overrides: dict[str, Any] | None = None) -> tuple[ScratchSegmenter, dict[str, Any]]:
    """The model ``name`` with random (seeded by the caller) weights, and its settings."""
    from monai.networks.nets import UNETR, UNet

    overrides = dict(overrides or {})
    if name == "unet":
        settings = {**UNET_DEFAULTS, **overrides}
        factor = 2 ** len(settings["strides"])
        if img_size % factor:
            raise FinetuneError(f"--size {img_size}: the U-Net needs a multiple of {factor}")
        net = UNet(spatial_dims=2, in_channels=3, out_channels=n_classes, **settings)
    elif name == "transunet":
        settings = {**UNETR_DEFAULTS, **overrides}
        if img_size % 16:
            raise FinetuneError(f"--size {img_size}: the UNETR (patch 16) needs a multiple of 16")
        net = UNETR(in_channels=3, out_channels=n_classes, img_size=(img_size, img_size), spatial_dims=2, **settings)
    else:
        raise FinetuneError(f"--model {name!r} is unknown; expected one of {', '.join(SCRATCH_MODELS)}")
    described = {"model": "monai.UNet" if name == "unet" else "monai.UNETR", **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}}
    return ScratchSegmenter(net), described

"""Segmentation with the backbone in the loop: the probes' decoders on its patch tokens.

:class:`Segmenter` feeds the decoder (:mod:`featx.decoders`: ``seg_unet`` reads the patch tokens
of the last 5 blocks, ``seg_linear`` the last one) with exactly what the extraction stores for
the frozen decoders: each block's patch tokens after the model's final norm, as a ``(B, h, w, D)``
grid. :func:`apply_method` then decides what of the backbone trains; the decoder always does.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from featx.backbones import BackboneError, LoadedBackbone, get_backbone_def
from featx.decoders.models import build_decoder, decoder_blocks
from featx.finetune.config import FinetuneError
from featx.finetune.methods import TunedBackbone


class Segmenter(TunedBackbone):
    """Patch tokens of the decoder's blocks -> the decoder -> logits ``(B, classes, S, S)``."""

    def __init__(self, backbone: LoadedBackbone, decoder: str, n_classes: int) -> None:
        super().__init__(backbone)
        need = decoder_blocks(decoder)
        if not backbone.config.get("patch_tokens") or len(backbone.layer_names) < need:
            raise ValueError(f"{decoder} needs a backbone loaded with patch_tokens=True and n_last >= {need}")
        self.layers = backbone.layer_names[-need:]
        dims = [backbone.feature_dims[layer] for layer in self.layers]
        self.head = build_decoder(decoder, dims, n_classes, backbone.img_size)

    def decode(self, features: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.head([features[layer]["patch"] for layer in self.layers])


def check_decoder_depth(backbone: str, size: int, decoder: str, overrides: dict[str, Any] | None = None) -> None:
    """Refuse, on the meta device (no weights read), a backbone with fewer blocks than ``decoder`` reads."""
    definition = get_backbone_def(backbone)
    definition.check_img_size(size)
    with torch.device("meta"):
        trunk: nn.Module = definition.build(size, dict(overrides or {}))
    need = decoder_blocks(decoder)
    try:
        definition.layer_plan(trunk, need)
    except BackboneError as error:
        raise FinetuneError(
            f"--decoder {decoder} reads the patch tokens of the last {need} blocks and {backbone} has fewer ({error}); "
            "use --decoder seg_linear (the last block only) or a deeper backbone"
        ) from None

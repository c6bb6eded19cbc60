"""SigLIP 2 image towers (Tschannen et al. 2025), timm ``vit_*_siglip_*.v2_webli``.

SigLIP towers have **no class token**: the image embedding is a multi-head attention-pooling
head (MAP, timm ``AttentionPoolLatent``: one learned query attending over all tokens, then its own
LayerNorm + MLP) on the final-normed tokens. featx uses that head's output as ``cls``: for every
returned block, ``cls = attn_pool(norm(block_i))`` (for the last block this is exactly the
tower's pre-projection image embedding; for earlier blocks it is the same head applied to their
normed tokens). ``pooled`` is the mean of the normed patch tokens, ``patch`` their grid.
``featx backbones`` shows this as the ``cls`` policy ``attention_pool``.

The learned position table (16x16 at 256 px for /16, 16x16 at 224 px for So400m/14) is resized
to the grid once at load time, bicubic with antialias (timm's ``resample_abs_pos_embed``).
Weights: Hugging Face ``timm/<arch>.v2_webli`` (``model.safetensors``); licence Apache-2.0.
"""

from __future__ import annotations

import torch
from torch import nn

from featx.backbones.base import BackboneSpec
from featx.backbones.locations import WeightCandidate
from featx.backbones.timm_vit import TimmViTDef, ViTExtractor


class AttentionPoolExtractor(ViTExtractor):
    """:class:`ViTExtractor` whose ``cls`` is the model's attention-pool (MAP) head output."""

    def cls_feature(self, patch: torch.Tensor, prefix: torch.Tensor | None, pooled: torch.Tensor) -> torch.Tensor:
        return self.trunk.attn_pool(patch)


class SigLIP2Def(TimmViTDef):
    def __init__(self, spec: BackboneSpec, arch: str, tag: str, weights: tuple[WeightCandidate, ...] | None = None) -> None:
        super().__init__(spec, arch=arch, tag=tag, pos_resize={"mode": "bicubic", "antialias": True}, weights=weights)
        self.cls_policy = "attention_pool"  # the base class would call a token-less ViT "mean_patch"

    def make_extractor(self, trunk: nn.Module, plan, patch_tokens, img_size):
        grid = tuple(trunk.patch_embed.dynamic_feat_size((img_size, img_size)))
        return AttentionPoolExtractor(trunk, plan, patch_tokens, norm=True, grid=grid)

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

from featx.backbones.base import INCEPTION_MEAN, INCEPTION_STD, BackboneDef, BackboneSpec
from featx.backbones.registry import register_backbone
from featx.backbones.timm_vit import TimmViTDef, ViTExtractor

#: featx name -> (timm arch, label, patch, native size, ~params in M); all tagged v2_webli
SIGLIP2_TOWERS = {
    "siglip2_vitb16_256": ("vit_base_patch16_siglip_256", "ViT-B/16", 16, 256, 93),
    "siglip2_vitl16_256": ("vit_large_patch16_siglip_256", "ViT-L/16", 16, 256, 316),
    "siglip2_so400m14_224": ("vit_so400m_patch14_siglip_224", "So400m/14", 14, 224, 428),
    "siglip2_so400m16_256": ("vit_so400m_patch16_siglip_256", "So400m/16", 16, 256, 428),
    "siglip2_vitg16_256": ("vit_giantopt_patch16_siglip_256", "g-opt/16", 16, 256, 1130),
}


class AttentionPoolExtractor(ViTExtractor):
    """:class:`ViTExtractor` whose ``cls`` is the model's attention-pool (MAP) head output."""

    def cls_feature(self, patch: torch.Tensor, prefix: torch.Tensor | None, pooled: torch.Tensor) -> torch.Tensor:
        return self.trunk.attn_pool(patch)


class SigLIP2Def(TimmViTDef):
    def __init__(self, spec: BackboneSpec, arch: str, tag: str) -> None:
        super().__init__(spec, arch=arch, tag=tag, pos_resize={"mode": "bicubic", "antialias": True})
        self.cls_policy = "attention_pool"  # the base class would call a token-less ViT "mean_patch"

    def make_extractor(self, trunk: nn.Module, plan, patch_tokens, img_size):
        grid = tuple(trunk.patch_embed.dynamic_feat_size((img_size, img_size)))
        return AttentionPoolExtractor(trunk, plan, patch_tokens, norm=True, grid=grid)


def _tower(name: str) -> BackboneDef:
    arch, label, patch, native, params = SIGLIP2_TOWERS[name]
    return SigLIP2Def(
        BackboneSpec(
            name=name,
            family="siglip2",
            mean=INCEPTION_MEAN,
            std=INCEPTION_STD,
            patch_size=patch,
            native_size=native,
            has_cls_token=False,
            description=f"SigLIP 2 {label} image tower (~{params}M), WebLI; cls = attention-pool (MAP) output",
            provenance=f"Google SigLIP 2 (Tschannen et al. 2025), WebLI, via timm/{arch}.v2_webli",
            licence="apache-2.0",
        ),
        arch=arch,
        tag="v2_webli",
    )


def _register_all() -> None:
    for name in SIGLIP2_TOWERS:
        register_backbone(name)(lambda n=name: _tower(n))


_register_all()

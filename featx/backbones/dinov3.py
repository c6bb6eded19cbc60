"""DINOv3 ViT-S/16, S+/16, B/16, L/16, H+/16, 7B/16 and the DINOv3 ConvNeXts (Siméoni et al. 2025).

ViTs are timm ``vit_*_patch16_dinov3`` (timm's ``Eva`` class: patch 16, one class token then
4 register ("storage") tokens, rotary position embeddings, no learned absolute position table, so
any multiple of 16 runs without resizing anything; native 256 px). Features follow DINOv3's own
evaluation code (``get_intermediate_layers(norm=True)``): every returned block goes through the
final LayerNorm, ``cls`` is the **class token** (timm's default pooling for these models is the
patch mean, ``global_pool='avg'``; featx takes the token instead), ``pooled`` the mean of the
patch tokens, and the 4 registers are dropped from both ``pooled`` and the patch grid.

The ConvNeXt-T/S/B/L distilled from the 7B teacher are timm ``convnext_*.dinov3_lvd1689m`` and run
as featx CNNs (:class:`featx.backbones.cnn.TimmCNNDef`): ``pool`` = global average of the last stage
followed by the head LayerNorm (DINOv3's ``x_norm_clstoken``); stages ``stage_0..stage_2`` are the
earlier stages' averages.

Weights: timm's format, Hugging Face ``timm/<arch>.lvd1689m`` (``model.safetensors``), or a file in
featx's weights folder. Meta's original ``dinov3_*_pretrain_lvd1689m-*.pth`` files use other names
(``storage_tokens``, ``ls1.gamma``, a masked ``qkv.bias``) and are refused by the strict check,
which names the first such tensor; use the timm repository's file. Licence: the DINOv3 License
(https://ai.meta.com/resources/models-and-libraries/dinov3-license/), not an open-source licence.
"""

from __future__ import annotations

import torch
from torch import nn

from featx.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BackboneDef, BackboneSpec
from featx.backbones.cnn import TimmCNNDef
from featx.backbones.registry import register_backbone
from featx.backbones.timm_vit import TimmViTDef

DINOV3_PROVENANCE = "Meta DINOv3 (Siméoni et al. 2025), LVD-1689M, via timm/{repo}"
DINOV3_LICENCE = "dinov3-license"

#: featx name -> (timm arch, label, ~params in M); all tagged lvd1689m
DINOV3_VITS = {
    "dinov3_vits16": ("vit_small_patch16_dinov3", "ViT-S/16", 21),
    "dinov3_vits16plus": ("vit_small_plus_patch16_dinov3", "ViT-S+/16", 29),
    "dinov3_vitb16": ("vit_base_patch16_dinov3", "ViT-B/16", 86),
    "dinov3_vitl16": ("vit_large_patch16_dinov3", "ViT-L/16", 300),
    "dinov3_vith16plus": ("vit_huge_plus_patch16_dinov3", "ViT-H+/16", 840),
    "dinov3_vit7b16": ("vit_7b_patch16_dinov3", "ViT-7B/16", 6700),
}

#: featx name -> timm ConvNeXt arch (tag dinov3_lvd1689m)
DINOV3_CONVNEXTS = {
    "dinov3_convnext_tiny": "convnext_tiny",
    "dinov3_convnext_small": "convnext_small",
    "dinov3_convnext_base": "convnext_base",
    "dinov3_convnext_large": "convnext_large",
}


class DINOv3ViTDef(TimmViTDef):
    """timm ``Eva`` DINOv3 ViT: class token after the final norm, registers dropped, RoPE."""

    final_norm = "per_block"
    cls_policy = "cls_token"
    pos_embed_resize = "none (rotary position embeddings, computed for the grid)"

    def build(self, img_size: int, overrides: dict) -> nn.Module:
        # global_pool='token' is DINOv3's own pooling; featx reads the token itself, this only keeps
        # the bare trunk's forward() consistent with it
        return self.create(overrides, img_size=img_size, global_pool="token")

    def after_random_init(self, trunk: nn.Module) -> str | None:
        """LayerScale gammas (Eva's ``gamma_1`` / ``gamma_2``, 1e-5 at init) -> 1.0, as for DINOv2."""
        gammas = [p for n, p in trunk.named_parameters() if n.endswith((".gamma_1", ".gamma_2"))]
        with torch.no_grad():
            for gamma in gammas:
                gamma.fill_(1.0)
        return "layer_scale_gamma=1.0" if gammas else None


def _vit(name: str) -> BackboneDef:
    arch, label, params = DINOV3_VITS[name]
    return DINOv3ViTDef(
        BackboneSpec(
            name=name,
            family="dinov3",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            patch_size=16,
            native_size=256,
            has_cls_token=True,
            description=f"DINOv3 {label} + 4 registers, RoPE (~{params}M params), LVD-1689M",
            provenance=DINOV3_PROVENANCE.format(repo=f"{arch}.lvd1689m"),
            licence=DINOV3_LICENCE,
        ),
        arch=arch,
        tag="lvd1689m",
    )


def _convnext(name: str) -> BackboneDef:
    arch = DINOV3_CONVNEXTS[name]
    return TimmCNNDef(
        BackboneSpec(
            name=name,
            family="cnn",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            patch_size=None,
            native_size=224,
            has_cls_token=False,
            description=f"DINOv3 ConvNeXt-{arch.split('_')[1].capitalize()} distilled from the 7B, LVD-1689M",
            provenance=DINOV3_PROVENANCE.format(repo=f"{arch}.dinov3_lvd1689m"),
            licence=DINOV3_LICENCE,
        ),
        arch=arch,
        tag="dinov3_lvd1689m",
    )


def _register_all() -> None:
    for name in DINOV3_VITS:
        register_backbone(name)(lambda n=name: _vit(n))
    for name in DINOV3_CONVNEXTS:
        register_backbone(name)(lambda n=name: _convnext(n))


_register_all()

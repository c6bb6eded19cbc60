"""DINOv2 ViT-S/14, B/14, L/14, g/14 and their 4-register variants (Oquab et al. 2023; Darcet et al. 2024).

Built as timm ``vit_*_patch14[_reg4]_dinov2`` at the requested resolution. Features follow the
DINOv2 linear-evaluation code: every returned block goes through the final LayerNorm
(``get_intermediate_layers(norm=True)``), ``cls`` is the class token, ``pooled`` the mean of the
patch tokens, and register tokens are dropped. The 37x37 position embedding of the 518-px
weights is resized with DINOv2's own ``interpolate_pos_encoding`` rule (bicubic, no antialias,
``scale_factor = (g + 0.1) / 37``), once at load time.

Weights are accepted in timm's format (HF ``timm/vit_*_dinov2.lvd142m``) and in the original
``facebookresearch/dinov2`` torch-hub format (``dinov2_vitl14_pretrain.pth``: ``mask_token``,
``register_tokens``, SwiGLU ``w12``/``w3``), converted with the mapping documented in
docs/backbones.md.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from featx.backbones.timm_vit import WRAPPER_PREFIXES, TimmViTDef, drop_head
from featx.backbones.weights import strip_prefixes


def convert_dinov2_original(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """facebookresearch/dinov2 keys -> timm keys.

    * ``mask_token`` (used only for iBOT masking in training) is dropped;
    * with registers: ``register_tokens`` -> ``reg_token``; timm's reg4 models add no position
      embedding to prefix tokens, so ``cls_token`` absorbs ``pos_embed[:, 0]`` and ``pos_embed``
      keeps only its patch positions;
    * SwiGLU (ViT-g): ``mlp.w12`` -> ``mlp.fc1``, ``mlp.w3`` -> ``mlp.fc2``;
    * every other key (``blocks.N.ls1.gamma`` ...) is already timm's.
    """
    state_dict = dict(state_dict)
    state_dict.pop("mask_token", None)
    out: dict[str, torch.Tensor] = {}
    if "register_tokens" in state_dict:
        out["reg_token"] = state_dict.pop("register_tokens")
        pos = state_dict.pop("pos_embed")
        out["cls_token"] = state_dict.pop("cls_token") + pos[:, :1]
        out["pos_embed"] = pos[:, 1:]
    for key, value in state_dict.items():
        key = re.sub(r"^(blocks\.\d+\.mlp)\.w12\.", r"\1.fc1.", key)
        key = re.sub(r"^(blocks\.\d+\.mlp)\.w3\.", r"\1.fc2.", key)
        out[key] = value
    return out


class DINOv2Def(TimmViTDef):
    def convert_state_dict(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        state_dict = strip_prefixes(state_dict, WRAPPER_PREFIXES)
        if "mask_token" in state_dict or "register_tokens" in state_dict:
            state_dict = convert_dinov2_original(state_dict)
        return drop_head(state_dict, trunk, ("head",))

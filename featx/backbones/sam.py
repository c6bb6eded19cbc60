"""SAM ViT-L/16 image encoder (Kirillov et al. 2023) as timm ``samvit_large_patch16``.

SAM's encoder has no class token and no final LayerNorm on its token stream (its "neck" is a
conv + LayerNorm2d stack that maps 1024 -> 256 channels for the mask decoder). featx returns the
transformer blocks' outputs as they are: ``cls`` = ``pooled`` = the mean of the patch tokens,
``patch`` = the ``(B, h, w, 1024)`` grid. The neck is kept in the module (so the published
weights load strictly) but not run.

SAM was trained at 1024 px (64x64 grid). featx builds the encoder at the requested size and
resizes, once at load time, the absolute position embedding (bicubic, antialias, as timm does at
run time) and the relative position tables of the global-attention blocks (linear, as SAM's own
``get_rel_pos`` does). Windowed blocks keep their 14x14 windows. Checkpoints are accepted in timm's
format (HF ``timm/samvit_large_patch16.sa1b``) and in SAM's original format
(``sam_vit_l_0b3195.pth``: ``image_encoder.*`` kept, ``mlp.lin1/lin2`` -> ``mlp.fc1/fc2``;
``prompt_encoder.*`` and ``mask_decoder.*`` dropped).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from featx.backbones.timm_vit import WRAPPER_PREFIXES, TimmArchDef, _inference_context, _last_blocks, drop_head
from featx.backbones.weights import strip_prefixes


class SamExtractor(nn.Module):
    """``forward(x) -> {block_i: {"cls", "pooled"[, "patch"]}}``; no class token: means of patches."""

    def __init__(self, trunk: nn.Module, plan: list[tuple[str, int]], patch_tokens: bool) -> None:
        super().__init__()
        self.trunk = trunk
        self.names = [name for name, _ in plan]
        self.indices = [index for _, index in plan]
        self.patch_tokens = patch_tokens
        self.inference_only = True

    def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        with _inference_context(self.inference_only):
            outs = self.trunk.forward_intermediates(
                x, indices=self.indices, norm=False, output_fmt="NCHW", intermediates_only=True
            )
            result = {}
            for name, out in zip(self.names, outs):
                pooled = out.mean(dim=(2, 3))
                layer = {"cls": pooled, "pooled": pooled}
                if self.patch_tokens:
                    layer["patch"] = out.permute(0, 2, 3, 1)
                result[name] = layer
            return result


def resize_rel_pos(rel_pos: torch.Tensor, length: int) -> torch.Tensor:
    """SAM's ``get_rel_pos`` resize of a ``(L, C)`` relative position table (linear)."""
    if rel_pos.shape[0] == length:
        return rel_pos
    out = F.interpolate(rel_pos.float().reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=length, mode="linear")
    return out.reshape(-1, length).permute(1, 0).to(rel_pos.dtype)


class SamDef(TimmArchDef):
    final_norm = "none"
    cls_policy = "mean_patch"
    pos_embed_resize = "abs: bicubic, antialias=True; rel: linear"

    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        return self.create(overrides, img_size=img_size)

    def layer_plan(self, trunk, n_last):
        return _last_blocks(self.spec.name, len(trunk.blocks), n_last)

    def make_extractor(self, trunk, plan, patch_tokens, img_size):
        return SamExtractor(trunk, plan, patch_tokens)

    def feature_dims(self, trunk, plan):
        return {name: int(trunk.embed_dim) for name, _ in plan}

    def patch_grid(self, trunk, img_size):
        p = int(trunk.patch_embed.patch_size[0])
        return (img_size // p, img_size // p)

    def convert_state_dict(self, state_dict, trunk):
        state_dict = strip_prefixes(state_dict, WRAPPER_PREFIXES)
        if any(k.startswith("image_encoder.") for k in state_dict):
            # original SAM: keep the image encoder, drop the prompt encoder and mask decoder
            state_dict = {
                k[len("image_encoder."):].replace("mlp.lin", "mlp.fc"): v
                for k, v in state_dict.items()
                if k.startswith("image_encoder.")
            }
        return drop_head(state_dict, trunk, ("head",))

    def fix_shapes(self, state_dict, trunk):
        expected = trunk.state_dict()
        out = dict(state_dict)
        pos = out.get("pos_embed")
        if pos is not None and "pos_embed" in expected and pos.shape != expected["pos_embed"].shape:
            target = expected["pos_embed"].shape
            if pos.ndim == 4 and pos.shape[-1] == target[-1]:
                from timm.layers import resample_abs_pos_embed_nhwc

                out["pos_embed"] = resample_abs_pos_embed_nhwc(pos.float(), tuple(target[1:3])).to(pos.dtype)
        for key, value in state_dict.items():
            if key.endswith(("attn.rel_pos_h", "attn.rel_pos_w")) and key in expected:
                target = expected[key].shape
                if value.shape != target and value.ndim == 2 and value.shape[1] == target[1]:
                    out[key] = resize_rel_pos(value, target[0])
        return out

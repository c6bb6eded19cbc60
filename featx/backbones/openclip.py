"""CLIP ViT-L/14 (OpenAI) and OpenCLIP ViT-H/14 (LAION-2B) image towers, through open_clip.

Only the image tower (``open_clip`` ``VisionTransformer``) is built. Features follow CLIP's own
linear-probe protocol (Radford et al. 2021, appendix A.3: "features before the linear projection
to the embedding space"): every returned block goes through ``ln_post`` (the tower's final
LayerNorm), ``cls`` is the class token, ``pooled`` the mean of the patch tokens; the projection
``proj`` into the joint image-text space is loaded but not applied. OpenAI's ViT-L/14 runs with
QuickGELU as it was trained. Normalisation is CLIP's own mean/std, not ImageNet's.

Checkpoints: open_clip files (HF ``timm/vit_large_patch14_clip_224.openai`` and
``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``: ``open_clip_model.safetensors`` /
``open_clip_pytorch_model.bin``), OpenAI's TorchScript ``ViT-L-14.pt`` (``~/.cache/clip``), or a
visual-tower-only state dict. From a full CLIP checkpoint featx keeps ``visual.*`` and drops the
text tower, ``logit_scale`` and the other text-side tensors. The 16x16 position grid is resized
to the requested size as open_clip does (bicubic, antialias).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from featx.backbones.base import BackboneDef, BackboneError, BackboneSpec
from featx.backbones.locations import WeightCandidate
from featx.backbones.timm_vit import _inference_context, _last_blocks, resize_abs_pos_embed
from featx.backbones.weights import strip_prefixes

OPEN_CLIP_POS_RESIZE = {"mode": "bicubic", "antialias": True}


class OpenCLIPExtractor(nn.Module):
    """``forward(x) -> {block_i: {"cls", "pooled"[, "patch"]}}`` over an open_clip VisionTransformer."""

    def __init__(self, trunk: nn.Module, plan: list[tuple[str, int]], patch_tokens: bool, grid: tuple[int, int]) -> None:
        super().__init__()
        self.trunk = trunk
        self.names = [name for name, _ in plan]
        self.indices = [index for _, index in plan]
        self.patch_tokens = patch_tokens
        self.grid = grid
        self.inference_only = True

    def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        with _inference_context(self.inference_only):
            out = self.trunk.forward_intermediates(
                x,
                indices=self.indices,
                normalize_intermediates=True,
                intermediates_only=True,
                output_fmt="NLC",
                output_extra_tokens=True,
            )
            result = {}
            for name, patch, prefix in zip(self.names, out["image_intermediates"], out["image_intermediates_prefix"]):
                pooled = patch.mean(dim=1)
                layer = {"cls": prefix[:, 0], "pooled": pooled}
                if self.patch_tokens:
                    layer["patch"] = patch.reshape(patch.shape[0], self.grid[0], self.grid[1], patch.shape[-1])
                result[name] = layer
            return result


class OpenCLIPDef(BackboneDef):
    final_norm = "per_block"  # ln_post
    cls_policy = "cls_token"
    pos_embed_resize = "bicubic, antialias=True (open_clip resize_pos_embed)"

    def __init__(self, spec: BackboneSpec, arch: str, quick_gelu: bool, weights: tuple[WeightCandidate, ...] = ()) -> None:
        self.spec = spec
        self.arch = arch
        self.quick_gelu = quick_gelu
        self.weights = tuple(weights)

    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        import open_clip
        from open_clip.model import CLIPVisionCfg, _build_vision_tower

        cfg = copy.deepcopy(open_clip.get_model_config(self.arch))
        if cfg is None:  # pragma: no cover - the names are open_clip built-ins
            raise BackboneError(f"open_clip has no model config {self.arch!r}")
        overrides = dict(overrides)
        embed_dim = int(overrides.pop("embed_dim", cfg["embed_dim"]))
        vision_cfg = dict(cfg["vision_cfg"])
        known = {f.name for f in dataclasses.fields(CLIPVisionCfg)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise BackboneError(f"{self.spec.name}: unknown model override(s) {unknown}; "
                                f"allowed: embed_dim and open_clip vision_cfg fields {sorted(known)}")
        vision_cfg.update(overrides)
        vision_cfg["image_size"] = img_size
        return _build_vision_tower(embed_dim, vision_cfg, quick_gelu=self.quick_gelu, cast_dtype=None)

    def layer_plan(self, trunk, n_last):
        return _last_blocks(self.spec.name, len(trunk.transformer.resblocks), n_last)

    def make_extractor(self, trunk, plan, patch_tokens, img_size):
        return OpenCLIPExtractor(trunk, plan, patch_tokens, self.patch_grid(trunk, img_size))

    def feature_dims(self, trunk, plan):
        return {name: int(trunk.transformer.width) for name, _ in plan}

    def patch_grid(self, trunk, img_size):
        p = int(trunk.patch_size[0])
        return (img_size // p, img_size // p)

    def arch_config(self):
        return {"source": "open_clip", "arch": self.arch, "quick_gelu": self.quick_gelu, "projection_applied": False}

    def convert_state_dict(self, state_dict, trunk):
        state_dict = strip_prefixes(state_dict, ("module.", "trunk.", "_orig_mod."))
        if any(k.startswith("visual.") for k in state_dict):
            # a full CLIP checkpoint: the image tower only; text tower, logit_scale etc. are not used
            state_dict = {k[len("visual."):]: v for k, v in state_dict.items() if k.startswith("visual.")}
        return state_dict

    def fix_shapes(self, state_dict, trunk):
        pos = state_dict.get("positional_embedding")
        target = trunk.positional_embedding
        if pos is None or pos.shape == target.shape or pos.ndim != 2 or pos.shape[-1] != target.shape[-1]:
            return state_dict
        try:
            resized = resize_abs_pos_embed(pos[None], tuple(trunk.grid_size), 1, **OPEN_CLIP_POS_RESIZE)[0]
        except ValueError:
            return state_dict
        return {**state_dict, "positional_embedding": resized}

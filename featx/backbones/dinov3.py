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
followed by the head LayerNorm (DINOv3's ``x_norm_clstoken``), and the ``pool`` patch map gets the
same LayerNorm (``x_norm_patchtokens``); stages ``stage_0..stage_2`` are the earlier stages' averages.

Weights: timm's format, Hugging Face ``timm/<arch>.lvd1689m`` (``model.safetensors``), a file in
featx's weights folder, or Meta's original release files (``dinov3_vits16_pretrain_lvd1689m-*.pth``
...) converted with :data:`DINOV3_META_KEY_MAP` (the renaming timm's own ``eva.checkpoint_filter_fn``
applies to those files, made strict):

====================================================  ==========================================
Meta ``facebookresearch/dinov3``                      timm ``vit_*_patch16_dinov3``
====================================================  ==========================================
``storage_tokens``                                    ``reg_token``
``blocks.N.ls1.gamma`` / ``blocks.N.ls2.gamma``        ``blocks.N.gamma_1`` / ``blocks.N.gamma_2``
``blocks.N.mlp.w1`` / ``w2`` / ``w3`` (SwiGLU, H+)     ``blocks.N.mlp.fc1_g`` / ``fc1_x`` / ``fc2``
``blocks.N.attn.qkv.bias`` (k part masked to 0)        dropped if q and v parts are all zero (timm's
                                                      models have no qkv bias), else an error
``mask_token``, ``*.bias_mask``, ``rope_embed.periods``,  dropped (training only / recomputed by timm)
``local_cls_norm.*`` (7B)
``cls_token``, ``patch_embed.*``, ``norm1/2``,          unchanged
``attn.qkv.weight``, ``attn.proj.*``, ``mlp.fc1/2``,
``norm.*``
====================================================  ==========================================

Licence: the DINOv3 License (https://ai.meta.com/resources/models-and-libraries/dinov3-license/),
not an open-source licence.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from featx.backbones.base import BackboneSpec
from featx.backbones.cnn import TimmCNNDef
from featx.backbones.locations import WeightCandidate
from featx.backbones.timm_vit import WRAPPER_PREFIXES, TimmViTDef, drop_head
from featx.backbones.weights import WeightsError, strip_prefixes

_BLOCK = r"^blocks\.(\d+)\."
#: regex on Meta's key -> timm key template (None: dropped; "qkv_bias": checked, see below)
DINOV3_META_KEY_MAP: list[tuple[str, str | None]] = [
    (r"^cls_token$", "cls_token"),
    (r"^storage_tokens$", "reg_token"),
    (r"^patch_embed\.proj\.(weight|bias)$", r"patch_embed.proj.\1"),
    (_BLOCK + r"(norm1|norm2)\.(weight|bias)$", r"blocks.\1.\2.\3"),
    (_BLOCK + r"attn\.qkv\.weight$", r"blocks.\1.attn.qkv.weight"),
    (_BLOCK + r"attn\.qkv\.bias$", "qkv_bias"),
    (_BLOCK + r"attn\.proj\.(weight|bias)$", r"blocks.\1.attn.proj.\2"),
    (_BLOCK + r"ls1\.gamma$", r"blocks.\1.gamma_1"),
    (_BLOCK + r"ls2\.gamma$", r"blocks.\1.gamma_2"),
    (_BLOCK + r"mlp\.(fc1|fc2)\.(weight|bias)$", r"blocks.\1.mlp.\2.\3"),
    (_BLOCK + r"mlp\.w1\.(weight|bias)$", r"blocks.\1.mlp.fc1_g.\2"),
    (_BLOCK + r"mlp\.w2\.(weight|bias)$", r"blocks.\1.mlp.fc1_x.\2"),
    (_BLOCK + r"mlp\.w3\.(weight|bias)$", r"blocks.\1.mlp.fc2.\2"),
    (r"^norm\.(weight|bias)$", r"norm.\1"),
    (r"^mask_token$", None),  # iBOT masking, training only
    (_BLOCK + r"attn\.qkv\.bias_mask$", None),  # the k-part mask of qkv.bias (applied below)
    (r"^rope_embed\.periods$", None),  # RoPE periods: timm recomputes them from the same temperature (100)
    (r"^local_cls_norm\.(weight|bias)$", None),  # 7B only: a norm for local crops in pretraining
]


def map_dinov3_meta_key(key: str) -> str | None:
    """One Meta DINOv3 key -> timm key, ``"qkv_bias"``, or None to drop; KeyError if unknown."""
    for pattern, template in DINOV3_META_KEY_MAP:
        if re.match(pattern, key):
            return None if template is None else re.sub(pattern, template, key)
    raise KeyError(key)


def convert_dinov3_meta(state_dict: dict[str, torch.Tensor], has_qkv_bias: bool,
                        source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Meta's DINOv3 ViT state dict -> timm ``vit_*_patch16_dinov3`` keys (see the module docstring)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        try:
            mapped = map_dinov3_meta_key(key)
        except KeyError:
            raise WeightsError(
                f"{source}: tensor {key!r} is not part of the DINOv3 checkpoint format featx maps "
                f"(see featx.backbones.dinov3.DINOV3_META_KEY_MAP); is this a DINOv3 ViT checkpoint?"
            ) from None
        if mapped is None:
            continue
        if mapped != "qkv_bias":
            out[mapped] = value
            continue
        q, k, v = value.chunk(3, dim=-1)  # the k part is masked to zero by bias_mask in DINOv3
        prefix = key[: -len("qkv.bias")]
        if has_qkv_bias:
            out[prefix + "q_bias"], out[prefix + "v_bias"] = q, v
        elif q.abs().max() > 0 or v.abs().max() > 0:
            raise WeightsError(
                f"{source}: tensor {key!r} holds non-zero query/value biases, but this timm DINOv3 "
                f"architecture has no qkv bias; use the matching timm '_qkvb' architecture as a timm name"
            )
    return out


class DINOv3ViTDef(TimmViTDef):
    """timm ``Eva`` DINOv3 ViT: class token after the final norm, registers dropped, RoPE."""

    final_norm = "per_block"
    cls_policy = "cls_token"

    def __init__(self, spec: BackboneSpec, arch: str, tag: str, weights: tuple[WeightCandidate, ...] | None = None) -> None:
        super().__init__(spec, arch=arch, tag=tag, weights=weights)
        self.pos_embed_resize = "none (rotary position embeddings, computed for the grid)"

    def build(self, img_size: int, overrides: dict) -> nn.Module:
        # global_pool='token' is DINOv3's own pooling; featx reads the token itself, this only keeps
        # the bare trunk's forward() consistent with it
        return self.create(overrides, img_size=img_size, global_pool="token")

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        state_dict = strip_prefixes(state_dict, WRAPPER_PREFIXES)
        if "storage_tokens" in state_dict:  # Meta's original release format
            has_bias = any(k.endswith(".q_bias") for k in trunk.state_dict())
            return convert_dinov3_meta(state_dict, has_bias)
        return drop_head(state_dict, trunk, ("head",))


class DINOv3ConvNeXtDef(TimmCNNDef):
    """DINOv3 ConvNeXt: ``pool`` = LayerNorm(global average); its patch map gets the same LayerNorm,
    as DINOv3's ``x_norm_patchtokens``."""

    final_norm = "head LayerNorm (pool vector and pool patch map)"
    norm_pool_map = True

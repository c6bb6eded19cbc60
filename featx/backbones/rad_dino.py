"""RAD-DINO (Pérez-García et al. 2025, microsoft/rad-dino): a DINOv2 ViT-B/14 trained on chest X-rays.

Published as a Hugging Face ``transformers`` ``Dinov2Model`` checkpoint (``model.safetensors``,
518 px, 37x37 positions, no registers). featx maps it onto the equivalent timm
``vit_base_patch14_dinov2`` (dim 768, depth 12, 12 heads, qkv bias, LayerScale, LayerNorm eps 1e-6)
with the documented key mapping :data:`RAD_DINO_KEY_MAP` (also in docs/backbones.md):

=====================================================================  ==============================
published (``Dinov2Model``, as ``save_pretrained`` writes it)           timm ``vit_base_patch14_dinov2``
=====================================================================  ==============================
``embeddings.cls_token``                                                ``cls_token``
``embeddings.position_embeddings``                                      ``pos_embed`` (resized to the grid)
``embeddings.patch_embeddings.projection.{weight,bias}``                ``patch_embed.proj.{weight,bias}``
``encoder.layer.N.norm1.{weight,bias}``                                 ``blocks.N.norm1.{weight,bias}``
``encoder.layer.N.attention.attention.{query,key,value}.{weight,bias}`` ``blocks.N.attn.qkv.{weight,bias}``
                                                                        (concatenated q, k, v on dim 0)
``encoder.layer.N.attention.output.dense.{weight,bias}``                ``blocks.N.attn.proj.{weight,bias}``
``encoder.layer.N.layer_scale1.lambda1``                                ``blocks.N.ls1.gamma``
``encoder.layer.N.norm2.{weight,bias}``                                 ``blocks.N.norm2.{weight,bias}``
``encoder.layer.N.mlp.fc{1,2}.{weight,bias}``                           ``blocks.N.mlp.fc{1,2}.{weight,bias}``
``encoder.layer.N.layer_scale2.lambda1``                                ``blocks.N.ls2.gamma``
``layernorm.{weight,bias}``                                             ``norm.{weight,bias}``
``embeddings.mask_token``                                               dropped (iBOT masking, training only)
=====================================================================  ==============================

transformers >= 5 names the attention ``attention.{q,k,v,o}_proj`` in memory (it renames on load
and back on save); a ``torch.save(model.state_dict())`` of that layout is accepted too. Anything
else is an error naming the tensor. Features: the final LayerNorm (``layernorm``, which is
``last_hidden_state``) on every returned block, ``cls`` = the class token (RAD-DINO's
``pooler_output``/CLS embedding), ``pooled`` = the patch-token mean. Position embeddings are resized
as ``transformers`` ``Dinov2Embeddings.interpolate_pos_encoding`` does: bicubic to the target grid,
no antialias. Normalisation is RAD-DINO's own (its ``preprocessor_config.json``), not ImageNet's.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from featx.backbones.timm_vit import TimmViTDef
from featx.backbones.weights import WeightsError, check_sidecar_mean_std, strip_prefixes

_LAYER = r"^encoder\.layer\.(\d+)\."
#: regex on the published key -> timm key template (None: dropped). ``qkv:<part>`` targets are
#: concatenated as q, k, v along dim 0.
RAD_DINO_KEY_MAP: list[tuple[str, str | None]] = [
    (r"^embeddings\.cls_token$", "cls_token"),
    (r"^embeddings\.position_embeddings$", "pos_embed"),
    (r"^embeddings\.patch_embeddings\.projection\.(weight|bias)$", r"patch_embed.proj.\1"),
    (r"^embeddings\.mask_token$", None),  # iBOT masking token: training only
    (_LAYER + r"(norm1|norm2)\.(weight|bias)$", r"blocks.\1.\2.\3"),
    (_LAYER + r"attention\.attention\.query\.(weight|bias)$", r"qkv:q:blocks.\1.attn.qkv.\2"),
    (_LAYER + r"attention\.attention\.key\.(weight|bias)$", r"qkv:k:blocks.\1.attn.qkv.\2"),
    (_LAYER + r"attention\.attention\.value\.(weight|bias)$", r"qkv:v:blocks.\1.attn.qkv.\2"),
    (_LAYER + r"attention\.output\.dense\.(weight|bias)$", r"blocks.\1.attn.proj.\2"),
    # transformers >= 5 in-memory names of the same tensors
    (_LAYER + r"attention\.q_proj\.(weight|bias)$", r"qkv:q:blocks.\1.attn.qkv.\2"),
    (_LAYER + r"attention\.k_proj\.(weight|bias)$", r"qkv:k:blocks.\1.attn.qkv.\2"),
    (_LAYER + r"attention\.v_proj\.(weight|bias)$", r"qkv:v:blocks.\1.attn.qkv.\2"),
    (_LAYER + r"attention\.o_proj\.(weight|bias)$", r"blocks.\1.attn.proj.\2"),
    (_LAYER + r"layer_scale1\.lambda1$", r"blocks.\1.ls1.gamma"),
    (_LAYER + r"layer_scale2\.lambda1$", r"blocks.\1.ls2.gamma"),
    (_LAYER + r"mlp\.(fc1|fc2)\.(weight|bias)$", r"blocks.\1.mlp.\2.\3"),
    (r"^layernorm\.(weight|bias)$", r"norm.\1"),
]


def map_rad_dino_key(key: str) -> str | None:
    """One published key -> timm key (``qkv:<q|k|v>:<timm key>`` for attention parts), None to drop.

    KeyError when the key is not part of the published layout.
    """
    for pattern, template in RAD_DINO_KEY_MAP:
        if re.match(pattern, key):
            return None if template is None else re.sub(pattern, template, key)
    raise KeyError(key)


def convert_rad_dino_state_dict(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A published RAD-DINO (``Dinov2Model``) state dict -> timm ``VisionTransformer`` state dict."""
    out: dict[str, torch.Tensor] = {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        try:
            mapped = map_rad_dino_key(key)
        except KeyError:
            raise WeightsError(
                f"{source}: tensor {key!r} is not part of the Hugging Face Dinov2Model layout featx maps "
                f"(see featx.backbones.rad_dino.RAD_DINO_KEY_MAP); is this a RAD-DINO / Dinov2Model checkpoint?"
            ) from None
        if mapped is None:
            continue
        if mapped.startswith("qkv:"):
            _, part, target = mapped.split(":", 2)
            parts.setdefault(target, {})[part] = value
        else:
            out[mapped] = value
    for target, qkv in parts.items():
        absent = [p for p in "qkv" if p not in qkv]
        if absent:
            raise WeightsError(
                f"{source}: attention tensor for {target!r} has {sorted(qkv)} but not {absent} "
                f"(query/key/value must all be present)"
            )
        out[target] = torch.cat([qkv["q"], qkv["k"], qkv["v"]], dim=0)
    return out


class RadDinoDef(TimmViTDef):
    def check_weights_folder(self, folder: Path) -> None:
        """A snapshot's ``preprocessor_config.json`` must agree with RAD-DINO's mean/std here."""
        check_sidecar_mean_std(folder, "preprocessor_config.json", (("image_mean",), ("image_std",)),
                               self.spec.mean, self.spec.std, self.spec.name)

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        stripped = strip_prefixes(state_dict, ("module.", "trunk.", "_orig_mod."))
        if set(stripped) <= set(trunk.state_dict()):
            return stripped  # already in timm layout (e.g. saved by featx)
        return convert_rad_dino_state_dict(state_dict)

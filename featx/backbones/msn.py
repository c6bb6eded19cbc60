"""MSN ViT-L/16 (Assran et al. 2022, facebookresearch/msn) mapped onto timm ``vit_large_patch16_224``.

timm has neither an MSN model nor MSN weights. The published checkpoint
(``vitl16_600ep.pth.tar``) is a training snapshot::

    {"encoder": ..., "target_encoder": ..., "prototypes": ..., "opt": ..., "epoch": ..., ...}

featx takes ``target_encoder`` (the EMA encoder MSN evaluates, as its ``linear_eval.py`` and
``logistic_eval.py`` do), whose keys carry DistributedDataParallel's ``module.`` prefix. The
encoder is MSN's ``src/deit.py`` VisionTransformer (``deit_large``: dim 1024, depth 24, 16 heads,
qkv bias, LayerNorm eps 1e-6, class token, learned position embedding for 14x14 + 1), which has
the same module names as timm's ``VisionTransformer``. The mapping is therefore (see
:data:`MSN_KEY_MAP` and docs/backbones.md):

============================================  ==========================================
published (``target_encoder``)                 timm ``vit_large_patch16_224``
============================================  ==========================================
``module.cls_token``                           ``cls_token``
``module.pos_embed``                           ``pos_embed`` (resized to the grid, bicubic)
``module.patch_embed.proj.{weight,bias}``      ``patch_embed.proj.{weight,bias}``
``module.blocks.N.norm1.{weight,bias}``        ``blocks.N.norm1.{weight,bias}``
``module.blocks.N.attn.qkv.{weight,bias}``     ``blocks.N.attn.qkv.{weight,bias}``
``module.blocks.N.attn.proj.{weight,bias}``    ``blocks.N.attn.proj.{weight,bias}``
``module.blocks.N.norm2.{weight,bias}``        ``blocks.N.norm2.{weight,bias}``
``module.blocks.N.mlp.fc1.{weight,bias}``      ``blocks.N.mlp.fc1.{weight,bias}``
``module.blocks.N.mlp.fc2.{weight,bias}``      ``blocks.N.mlp.fc2.{weight,bias}``
``module.norm.{weight,bias}``                  ``norm.{weight,bias}``
``module.fc.*`` (projection head, 3 linears     dropped: MSN evaluates the representation
+ BatchNorm1d)                                  before the head
``module.pred.*`` (optional prediction head)   dropped, likewise
============================================  ==========================================

Anything else in ``target_encoder`` is an error. Features: final norm on every returned block
and the class token, as MSN's ``forward_return_n_last_blocks``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from featx.backbones.timm_vit import TimmViTDef
from featx.backbones.weights import WeightsError, strip_prefixes

#: regex on the published key (``module.`` already stripped) -> timm key template (None: drop)
MSN_KEY_MAP: list[tuple[str, str | None]] = [
    (r"^cls_token$", "cls_token"),
    (r"^pos_embed$", "pos_embed"),
    (r"^patch_embed\.proj\.(weight|bias)$", r"patch_embed.proj.\1"),
    (r"^blocks\.(\d+)\.(norm1|norm2)\.(weight|bias)$", r"blocks.\1.\2.\3"),
    (r"^blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)$", r"blocks.\1.attn.\2.\3"),
    (r"^blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)$", r"blocks.\1.mlp.\2.\3"),
    (r"^norm\.(weight|bias)$", r"norm.\1"),
    (r"^fc\..*$", None),    # MSN projection head (fc1, bn1, fc2, bn2, fc3): not part of the representation
    (r"^pred\..*$", None),  # optional prediction head
]

MSN_CHECKPOINT_KEYS = ("target_encoder",)


def map_msn_key(key: str) -> str | None:
    """One published key (without ``module.``) -> timm key, None to drop; KeyError if unknown."""
    for pattern, template in MSN_KEY_MAP:
        if re.match(pattern, key):
            return None if template is None else re.sub(pattern, template, key)
    raise KeyError(key)


def convert_msn_state_dict(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A published MSN ``target_encoder`` state dict -> timm ``VisionTransformer`` state dict."""
    state_dict = strip_prefixes(state_dict, ("module.",))
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        try:
            mapped = map_msn_key(key)
        except KeyError:
            raise WeightsError(
                f"{source}: tensor {key!r} is not part of the MSN checkpoint format featx maps "
                f"(see featx.backbones.msn.MSN_KEY_MAP); is this an MSN ViT checkpoint?"
            ) from None
        if mapped is not None:
            out[mapped] = value
    return out


class MSNDef(TimmViTDef):
    checkpoint_keys = MSN_CHECKPOINT_KEYS

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        stripped = strip_prefixes(state_dict, ("trunk.",))
        if set(stripped) <= set(trunk.state_dict()):
            return stripped  # already in timm layout (e.g. saved by featx)
        return convert_msn_state_dict(state_dict)

"""Supervised ImageNet-1k CNNs: DenseNet201, ResNet152, VGG19 (and any timm CNN by name).

Classification uses the *penultimate* features, as in the paper (n_last_blocks 1, avgpool off):
the layer ``"pool"``, whose ``cls`` = ``pooled`` = the network's own pre-logits vector

* ResNet152: global average of ``layer4`` (2048);
* DenseNet201: global average of ``features.norm5`` (BN + ReLU, 1920);
* VGG19: ``fc7`` after ReLU (4096; timm runs fc6/fc7 as convolutions, so at 448 px the 4096-map
  is 8x8 and is averaged).

For segmentation the intermediate stages are the layers, named ``stage_{i}`` after timm's
``feature_info`` index ``i`` (ResNet: ``stage_0`` = stem, ``stage_1``..``stage_3`` =
``layer1``..``layer3``, and ``layer4`` *is* ``pool``; DenseNet: ``stage_0`` = stem,
``stage_1``..``stage_3`` = dense blocks 1-3, ``norm5`` is ``pool``; VGG: ``stage_0``..``stage_5`` =
the five conv stages and the last max-pool, then ``pool`` = the fc7 map). ``n_last`` takes the
deepest ``n_last`` of that sequence; every stage's ``cls`` = ``pooled`` = its global average.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from featx.backbones.base import BackboneError
from featx.backbones.timm_vit import WRAPPER_PREFIXES, TimmArchDef, _inference_context, drop_head
from featx.backbones.weights import strip_prefixes


def _has_pre_logits_map(trunk: nn.Module) -> bool:
    """True when the head runs layers (VGG's conv fc6/fc7) before pooling the final stage."""
    pre = getattr(trunk, "pre_logits", None)
    return isinstance(pre, nn.Module) and not isinstance(pre, nn.Identity) and any(True for _ in pre.parameters())


class CNNExtractor(nn.Module):
    """``forward(x) -> {"stage_i"...: {...}, "pool": {"cls", "pooled"[, "patch"]}}``."""

    def __init__(self, trunk: nn.Module, plan: list[tuple[str, int]], patch_tokens: bool, pre_logits_map: bool,
                 n_features: int, norm_pool_map: bool = False) -> None:
        super().__init__()
        self.trunk = trunk
        self.plan = plan
        self.patch_tokens = patch_tokens
        self.pre_logits_map = pre_logits_map
        self.norm_pool_map = norm_pool_map
        stages = [index for name, index in plan if index >= 0]
        # always ask for at least the last stage so that the final map is computed
        self.stage_indices = sorted(set(stages)) or [n_features - 1]
        self.inference_only = True

    def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        with _inference_context(self.inference_only):
            final, inters = self.trunk.forward_intermediates(x, indices=self.stage_indices, intermediates_only=False)
            by_index = dict(zip(self.stage_indices, inters))
            result = {}
            for name, index in self.plan:
                if name == "pool":
                    if self.pre_logits_map:
                        fmap = self.trunk.pre_logits(final)
                        vec = self.trunk.head(fmap, pre_logits=True)
                    else:
                        vec = self.trunk.forward_head(final, pre_logits=True)
                        # the head's norm on the map too (DINOv3 ConvNeXt norms its patch tokens)
                        fmap = self.trunk.head.norm(final) if self.norm_pool_map else final
                    layer = {"cls": vec, "pooled": vec}
                else:
                    fmap = by_index[index]
                    pooled = fmap.mean(dim=(2, 3))
                    layer = {"cls": pooled, "pooled": pooled}
                if self.patch_tokens:
                    layer["patch"] = fmap.permute(0, 2, 3, 1)
                result[name] = layer
            return result


class TimmCNNDef(TimmArchDef):
    final_norm = "architecture"  # whatever the network applies before its head (DenseNet: norm5)
    cls_policy = "global_avg_pool"
    pos_embed_resize = "none"
    #: apply the head's norm (``trunk.head.norm``) to the ``pool`` layer's patch map as well
    norm_pool_map = False

    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        return self.create(overrides)

    def check_img_size(self, img_size: int) -> None:
        if img_size < 32:
            raise BackboneError(f"{self.spec.name}: img_size {img_size} is below 32 px, the network's total stride")

    def sequence(self, trunk: nn.Module) -> list[tuple[str, int]]:
        """All layers this CNN can return, shallow -> deep (``index`` -1: computed by the head)."""
        n = len(trunk.feature_info)
        if _has_pre_logits_map(trunk):
            return [(f"stage_{i}", i) for i in range(n)] + [("pool", -1)]
        return [(f"stage_{i}", i) for i in range(n - 1)] + [("pool", n - 1)]

    def layer_plan(self, trunk, n_last):
        seq = self.sequence(trunk)
        if n_last < 1:
            raise BackboneError(f"n_last must be >= 1, got {n_last}")
        if n_last > len(seq):
            raise BackboneError(f"{self.spec.name}: n_last={n_last} but it has only {len(seq)} layers "
                                f"({', '.join(n for n, _ in seq)})")
        return seq[-n_last:]

    def make_extractor(self, trunk, plan, patch_tokens, img_size):
        return CNNExtractor(trunk, plan, patch_tokens, _has_pre_logits_map(trunk), len(trunk.feature_info),
                            norm_pool_map=self.norm_pool_map)

    def feature_dims(self, trunk, plan):
        dims = {}
        for name, index in plan:
            if name == "pool":
                dims[name] = int(getattr(trunk, "head_hidden_size", None) or trunk.num_features)
            else:
                dims[name] = int(trunk.feature_info[index]["num_chs"])
        return dims

    def patch_grid(self, trunk, img_size):
        """Grid of the deepest layer ("pool"): the final stage, or VGG's fc7 map (7x7 conv fc6)."""
        reduction = int(trunk.feature_info[-1]["reduction"])
        side = img_size // reduction
        if _has_pre_logits_map(trunk):
            kernel = int(getattr(trunk.pre_logits, "input_kernel_size", 1))
            side = max(side, kernel) - kernel + 1
        return (side, side)

    def convert_state_dict(self, state_dict, trunk):
        state_dict = strip_prefixes(state_dict, WRAPPER_PREFIXES)
        state_dict = _torchvision_to_timm(self.arch, state_dict, trunk)
        classifier = (getattr(trunk, "pretrained_cfg", None) or {}).get("classifier") or "fc"
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        return drop_head(state_dict, trunk, heads)


def _torchvision_to_timm(arch: str, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
    """torchvision checkpoints (``densenet201-c1103571.pth``, ``vgg19-dcbb9e9d.pth``) -> timm keys.

    DenseNet: the old ``norm.1`` / ``conv.1`` names -> ``norm1`` / ``conv1`` (timm's own filter).
    VGG: ``classifier.0`` / ``classifier.3`` linears -> ``pre_logits.fc1`` / ``fc2`` convolutions
    (reshaped to the conv kernels; torchvision flattens the 512x7x7 map channel-first, as the conv
    expects), ``classifier.6`` -> ``head.fc`` (the ImageNet classifier, then dropped).
    ResNet keys are identical in both.
    """
    if arch.startswith("densenet") and any(".norm.1." in k or ".conv.1." in k for k in state_dict):
        from timm.models.densenet import _filter_torchvision_pretrained

        return _filter_torchvision_pretrained(dict(state_dict))
    if arch.startswith("vgg") and any(k.startswith("classifier.") for k in state_dict):
        expected = {k: tuple(v.shape) for k, v in trunk.state_dict().items()}
        rename = {"classifier.0.": "pre_logits.fc1.", "classifier.3.": "pre_logits.fc2.", "classifier.6.": "head.fc."}
        out = {}
        for key, value in state_dict.items():
            for old, new in rename.items():
                if key.startswith(old):
                    key = new + key[len(old):]
            shape = expected.get(key)
            if shape is not None and value.ndim == 2 and len(shape) == 4 and value.numel() == math.prod(shape):
                value = value.reshape(shape)
            out[key] = value
        return out
    return state_dict

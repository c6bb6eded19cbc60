"""BiomedCLIP image tower (Zhang et al. 2023, ``microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224``).

BiomedCLIP is an open_clip ``hf-hub:`` model whose image tower is open_clip's ``TimmModel``
around timm ``vit_base_patch16_224`` (``open_clip_config.json``: ``timm_pool: ""`` -> the trunk's
own class-token pooling, ``timm_proj: "linear"`` -> a bias-free 768 -> 512 projection). featx
builds that timm ViT directly and loads ``visual.trunk.*`` from the snapshot's
``open_clip_pytorch_model.bin``; the projection ``visual.head.proj.weight`` is dropped (as for
CLIP, the linear-probe features are taken before the projection to the joint space), and so are
the text tower (``text.*``) and ``logit_scale``. Any other ``visual.*`` tensor is an error.

Features: the final LayerNorm on every returned block, ``cls`` = the class token (the tensor the
projection would see), ``pooled`` = the patch-token mean. Normalisation is the snapshot's
``preprocess_cfg`` (OpenAI CLIP mean/std). Weights: a local Hugging Face snapshot, found offline in
the HF cache, or ``--weights SNAPSHOT_FOLDER``; licence MIT.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from featx.backbones.catalog import BIOMEDCLIP_HF_REPO
from featx.backbones.timm_vit import WRAPPER_PREFIXES, TimmViTDef
from featx.backbones.weights import WeightsError, check_sidecar_mean_std, strip_prefixes

#: image-tower tensors of the open_clip checkpoint that are not part of the features
BIOMEDCLIP_DROPPED_VISUAL = ("visual.head.proj.weight", "visual.head.proj.bias")
#: top-level prefixes of the text side of the checkpoint (dropped)
BIOMEDCLIP_TEXT_PREFIXES = ("text.", "logit_scale", "logit_bias")


def convert_biomedclip_state_dict(state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """A full BiomedCLIP open_clip state dict -> the timm trunk's state dict (image tower only)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith("visual.trunk."):
            out[key[len("visual.trunk."):]] = value
        elif key in BIOMEDCLIP_DROPPED_VISUAL or key.startswith(BIOMEDCLIP_TEXT_PREFIXES):
            continue
        else:
            raise WeightsError(
                f"{source}: tensor {key!r} is not part of the BiomedCLIP open_clip layout featx maps "
                f"(visual.trunk.* kept; visual.head.proj, text.*, logit_scale dropped); is this a BiomedCLIP checkpoint?"
            )
    return out


class BiomedCLIPDef(TimmViTDef):
    def check_weights_folder(self, folder: Path) -> None:
        """A snapshot's ``open_clip_config.json`` ``preprocess_cfg`` must agree with the mean/std here."""
        check_sidecar_mean_std(folder, "open_clip_config.json", (("preprocess_cfg", "mean"), ("preprocess_cfg", "std")),
                               self.spec.mean, self.spec.std, self.spec.name)

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        state_dict = strip_prefixes(state_dict, WRAPPER_PREFIXES)
        if any(k.startswith("visual.") for k in state_dict):
            return convert_biomedclip_state_dict(state_dict)
        return state_dict  # the trunk alone (timm layout, e.g. saved by featx): the strict check decides

    def arch_config(self):
        return {**super().arch_config(), "projection_applied": False, "open_clip_hf_hub": BIOMEDCLIP_HF_REPO}

"""Frozen vision backbones with the features their authors intended, loaded offline.

>>> from featx.backbones import load_backbone, list_backbones
>>> loaded = load_backbone("dinov2_vitl14", img_size=448, weights="dinov2_vitl14.safetensors")  # doctest: +SKIP
>>> out = loaded.model(x)  # {"block_20": {"cls": (B, 1024), "pooled": (B, 1024)}, ..., "block_23": {...}}

See docs/backbones.md for every name, its features, and how to provide weights offline. The names
below are imported on first use, so listing and checking names (featx.backbones.registry,
featx.backbones.listing) never import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featx.lazy import lazy_exports

if TYPE_CHECKING:
    from featx.backbones.base import BackboneDef, LoadedBackbone
    from featx.backbones.listing import describe_backbone
    from featx.backbones.loader import load_backbone, save_weights
    from featx.backbones.locations import WeightCandidate
    from featx.backbones.registry import check_backbone_name, get_backbone_def, list_backbones, register_backbone
    from featx.backbones.spec import BackboneError, BackboneSpec
    from featx.backbones.weights import WeightsError

#: public name -> the module that defines it
_HOMES = {
    "BackboneDef": "featx.backbones.base",
    "BackboneError": "featx.backbones.spec",
    "BackboneSpec": "featx.backbones.spec",
    "LoadedBackbone": "featx.backbones.base",
    "WeightCandidate": "featx.backbones.locations",
    "WeightsError": "featx.backbones.weights",
    "check_backbone_name": "featx.backbones.registry",
    "describe_backbone": "featx.backbones.listing",
    "get_backbone_def": "featx.backbones.registry",
    "list_backbones": "featx.backbones.registry",
    "load_backbone": "featx.backbones.loader",
    "register_backbone": "featx.backbones.registry",
    "save_weights": "featx.backbones.loader",
}

__all__ = [
    "BackboneDef",
    "BackboneError",
    "BackboneSpec",
    "LoadedBackbone",
    "WeightCandidate",
    "WeightsError",
    "check_backbone_name",
    "describe_backbone",
    "get_backbone_def",
    "list_backbones",
    "load_backbone",
    "register_backbone",
    "save_weights",
]

__getattr__ = lazy_exports(__name__, _HOMES)

"""Frozen vision backbones with the features their authors intended, loaded offline.

>>> from featx.backbones import load_backbone, list_backbones
>>> loaded = load_backbone("dinov2_vitl14", img_size=448, weights="dinov2_vitl14.safetensors")  # doctest: +SKIP
>>> out = loaded.model(x)  # {"block_20": {"cls": (B, 1024), "pooled": (B, 1024)}, ..., "block_23": {...}}

See docs/backbones.md for every name, its features, and how to provide weights offline.
"""

from featx.backbones.base import BackboneDef, BackboneError, BackboneSpec, LoadedBackbone
from featx.backbones.loader import describe_backbone, load_backbone, save_weights
from featx.backbones.registry import get_backbone_def, list_backbones, register_backbone
from featx.backbones.weights import WeightCandidate, WeightsError

__all__ = [
    "BackboneDef",
    "BackboneError",
    "BackboneSpec",
    "LoadedBackbone",
    "WeightCandidate",
    "WeightsError",
    "describe_backbone",
    "get_backbone_def",
    "list_backbones",
    "load_backbone",
    "register_backbone",
    "save_weights",
]

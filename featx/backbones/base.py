"""The public data types of featx.backbones and the base class every backbone family implements.

A *backbone definition* (:class:`BackboneDef`) knows how to build one architecture at a given
resolution (random init, on any device including ``meta``), how to turn a checkpoint in its
published format into that architecture's state dict, where its published weights live in the
local caches, and how to wrap the built network into a *feature extractor*: a module whose
``forward(x)`` returns ``{layer: {"cls": (B, D), "pooled": (B, D), "patch": (B, h, w, D)}}``.
:func:`featx.backbones.load_backbone` puts these pieces together.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featx.backbones.spec import (  # noqa: F401 - the constants are re-exported for the families
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    BackboneError,
    BackboneSpec,
)
from featx.backbones.weights import WeightCandidate, WeightsError

__all__ = ["BackboneDef", "BackboneError", "BackboneSpec", "LoadedBackbone", "WeightsError"]


@dataclass
class LoadedBackbone:
    """A frozen feature extractor ready to run, with everything that identifies its features."""

    model: nn.Module
    spec: BackboneSpec
    layer_names: list[str]
    feature_dims: dict[str, int]
    img_size: int
    weights_hash: str
    weights_source: str
    random_init: bool
    config: dict = field(default_factory=dict)

    @property
    def trunk(self) -> nn.Module:
        """The underlying timm / open_clip network (for fine-tuning or inspection)."""
        return self.model.trunk  # type: ignore[return-value]

    def patch_grid(self) -> tuple[int, int] | None:
        """The (h, w) patch-token grid of the deepest layer at ``img_size`` (None if unknown)."""
        grid = self.config.get("patch_grid")
        return tuple(grid) if grid else None  # type: ignore[return-value]


class BackboneDef(abc.ABC):
    """One architecture: build, convert checkpoints, find weights, wrap as a feature extractor."""

    spec: BackboneSpec
    #: where the published weights may sit locally, most preferred first (see :meth:`weight_candidates`)
    weights: tuple[WeightCandidate, ...] = ()

    #: policy strings recorded in ``LoadedBackbone.config`` (and so in the cache key)
    final_norm: str = "per_block"
    cls_policy: str = "cls_token"
    pos_embed_resize: str = "none"
    #: top-level checkpoint entries to take the state dict from, before the usual wrappers
    checkpoint_keys: tuple[str, ...] = ()

    # -- architecture -------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        """The network with random weights at ``img_size`` (honours a ``torch.device`` context)."""

    @abc.abstractmethod
    def layer_plan(self, trunk: nn.Module, n_last: int) -> list[tuple[str, int]]:
        """``[(layer_name, index), ...]`` of the ``n_last`` deepest layers, shallow -> deep."""

    @abc.abstractmethod
    def make_extractor(self, trunk: nn.Module, plan: list[tuple[str, int]], patch_tokens: bool,
                       img_size: int) -> nn.Module:
        """Wrap ``trunk`` into a module returning ``{layer: {"cls", "pooled"[, "patch"]}}``."""

    def feature_dims(self, trunk: nn.Module, plan: list[tuple[str, int]]) -> dict[str, int]:
        """Width of every returned layer (ViTs: the embedding width)."""
        width = int(getattr(trunk, "embed_dim", 0) or getattr(trunk, "num_features", 0))
        return {name: width for name, _ in plan}

    def patch_grid(self, trunk: nn.Module, img_size: int) -> tuple[int, int] | None:
        """The deepest layer's patch grid at ``img_size``."""
        if self.spec.patch_size is None:
            return None
        return (img_size // self.spec.patch_size, img_size // self.spec.patch_size)

    def after_random_init(self, trunk: nn.Module) -> str | None:
        """Adjust a freshly random-initialised trunk; return a policy note for ``config`` (or None)."""
        return None

    def check_img_size(self, img_size: int) -> None:
        """Refuse a resolution the architecture cannot run at."""
        if img_size <= 0:
            raise BackboneError(f"img_size must be positive, got {img_size}")
        patch = self.spec.patch_size
        if patch and img_size % patch:
            raise BackboneError(
                f"{self.spec.name}: img_size {img_size} is not a multiple of the patch size {patch} "
                f"(use e.g. {patch * (img_size // patch)} or {patch * (img_size // patch + 1)})"
            )

    def arch_config(self) -> dict[str, Any]:
        """JSON-able description of the architecture source (goes into ``config``)."""
        return {}

    # -- weights ------------------------------------------------------------------------------
    def weight_candidates(self) -> list[WeightCandidate]:
        """Where the published weights may sit in local caches, most preferred first."""
        return list(self.weights)

    def check_weights_folder(self, folder: Path) -> None:
        """Refuse a weights folder whose own metadata (e.g. a Hugging Face snapshot's preprocessing
        config next to the file) contradicts this definition; raise :class:`WeightsError`."""
        return None

    def convert_state_dict(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        """Checkpoint (in its published format) -> this architecture's state dict.

        ``trunk`` is a shape-only (meta) instance; implementations must not modify it. Tensors
        the architecture deliberately does not use (classifier heads, text towers, projection
        heads) are dropped here, by explicit rule, never by "whatever does not fit".
        """
        return state_dict

    def fix_shapes(self, state_dict: dict[str, torch.Tensor], trunk: nn.Module) -> dict[str, torch.Tensor]:
        """Adapt resolution-dependent tensors (position embeddings) to ``trunk``'s grid."""
        return state_dict

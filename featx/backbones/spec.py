"""What a backbone is, as plain data: importable without torch, so listing and name checks are instant.

:class:`BackboneSpec` describes a backbone independent of resolution and weights;
:class:`BackboneShape` holds the facts ``featx backbones`` shows without building the network;
:class:`BackboneEntry` is one row of the registry's tables (featx.backbones.catalog): a spec, the
definition class that builds it (imported only when the backbone is used), and where its weights live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from featx.backbones.locations import WeightCandidate

__all__ = ["BackboneEntry", "BackboneError", "BackboneShape", "BackboneSpec"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class BackboneError(ValueError):
    """A backbone asked for in a way that cannot work (unknown name, bad size, bad overrides)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone is, independent of resolution and weights."""

    name: str
    family: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    patch_size: int | None
    native_size: int
    has_cls_token: bool
    description: str
    #: where the published weights come from (paper / release), recorded as provenance when set
    provenance: str = ""
    #: the weights' licence as published (e.g. "apache-2.0", "dinov3-license"), recorded when set
    licence: str = ""


@dataclass(frozen=True)
class BackboneShape:
    """The built network's facts for the listing, as measured on the ``meta`` device (tests re-measure them).

    ``params`` are the coefficients ``(c0, c1, c2)`` of the parameter count at a patch grid of side
    ``g``: ``c0 + c1 * g + c2 * g**2`` (learned position tables grow with the grid; CNNs: ``c0``).
    """

    params: tuple[int, int, int]
    #: width of the deepest returned layer
    dim: int
    #: how many layers the network can return (ViT blocks; CNN stages plus ``pool``)
    layers: int
    #: ``LoadedBackbone.config["cls_policy"]``
    cls_policy: str
    #: CNNs: total stride of the last stage (0 for ViTs, whose grid is ``size // patch``)
    stride: int = 0
    #: CNNs: kernel of a head convolution run on the last map before pooling (VGG's fc6: 7)
    head_kernel: int = 1

    def params_at(self, grid_side: int) -> int:
        """Parameter count when the patch grid is ``grid_side`` x ``grid_side``."""
        c0, c1, c2 = self.params
        return c0 + c1 * grid_side + c2 * grid_side * grid_side


@dataclass(frozen=True)
class BackboneEntry:
    """One registered backbone as data: built as ``definition(spec, weights=weights, **options)``."""

    spec: BackboneSpec
    #: ``"module:Class"`` of the :class:`featx.backbones.base.BackboneDef` that builds it
    definition: str
    #: where the published weights may sit locally, most preferred first
    weights: tuple[WeightCandidate, ...]
    shape: BackboneShape
    #: the definition's other keyword arguments (timm ``arch`` and ``tag``, position-resize policy ...)
    options: dict[str, Any] = field(default_factory=dict)


def first_found(candidates: Any) -> str | None:
    """The first weights location that exists on this machine (as text), or None."""
    for candidate in candidates:
        path = candidate.resolve()
        if path is not None:
            return str(path)
    return None


def listing_row(spec: BackboneSpec, *, params: float | None, feature_dim: int | None, layers: list[str],
                cls_policy: str, grids: dict[int, Any], weights_found: str | None) -> dict[str, Any]:
    """One backbone's row of `featx backbones` (and ``--json``), whichever way its facts were found."""
    return {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "params_m": None if params is None else params / 1e6,
        "feature_dim": feature_dim,
        "layers": layers,
        "patch_size": spec.patch_size,
        "native_size": spec.native_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "has_cls_token": spec.has_cls_token,
        "cls_policy": cls_policy,
        "provenance": spec.provenance,
        "licence": spec.licence,
        "patch_grid": {str(k): v for k, v in grids.items()},
        "weights_found": weights_found,
    }

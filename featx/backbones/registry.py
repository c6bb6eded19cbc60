"""Typed registry of backbones: a name -> a factory returning a :class:`BackboneDef`.

Families register their names with ``@register_backbone("name")`` on a zero-argument factory.
Any other name that timm knows (``vit_small_patch16_224``, ``convnext_tiny.fb_in1k`` ...) is
served by the generic timm family, so users are never limited to the paper's list.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable

from featx.backbones.base import BackboneDef, BackboneError

Factory = Callable[[], BackboneDef]

_REGISTRY: dict[str, Factory] = {}
_BUILTINS_LOADED = False


def register_backbone(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory() -> BackboneDef`` under ``name`` (names are unique)."""

    def decorate(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorate


for _name in ("swinunetr3d", "segresnet3d"):  # the 3D encoders: featx.backbones.volumetric, imported on first use
    register_backbone(_name)(lambda name=_name: importlib.import_module("featx.backbones.volumetric").definition(name))
del _name


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    # importing the family modules runs their @register_backbone decorators
    from featx.backbones import (  # noqa: F401
        biomedclip, cnn, dinov2, dinov3, msn, openclip, rad_dino, sam, siglip2, timm_vit,
    )


def list_backbones() -> list[str]:
    """The registered backbone names (the paper's 13 families and variants), sorted.

    Any timm model name is accepted by ``load_backbone`` as well, without being listed here.
    """
    _load_builtins()
    return sorted(_REGISTRY)


def is_registered(name: str) -> bool:
    _load_builtins()
    return name in _REGISTRY


def get_backbone_def(name: str) -> BackboneDef:
    """The definition for ``name``: registered, else a generic timm model; else BackboneError."""
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]()
    from featx.backbones.timm_vit import generic_timm_def

    definition = generic_timm_def(name)
    if definition is not None:
        return definition
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise BackboneError(
        f"unknown backbone {name!r}: neither a featx backbone ({', '.join(sorted(_REGISTRY))}) "
        f"nor a timm model name.{hint}"
    )

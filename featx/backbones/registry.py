"""Typed registry of backbones: a name -> a factory returning a :class:`BackboneDef`.

The built-in names come from the tables in :mod:`featx.backbones.catalog` (data: a spec, the
definition class, where the weights live); their definition classes, and with them torch, timm and
open_clip, are imported only when a backbone is built. Plug-ins register more names with
``@register_backbone("name")`` on a zero-argument factory. Any other name that timm knows
(``vit_small_patch16_224``, ``convnext_tiny.fb_in1k`` ...) is served by the generic timm family, so
users are never limited to the paper's list. :func:`check_backbone_name` refuses any other name at
once, without importing torch.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from featx.backbones.catalog import ENTRIES
from featx.backbones.spec import BackboneEntry, BackboneError
from featx.backbones.timm_names import is_timm_model, timm_model_names

if TYPE_CHECKING:
    from featx.backbones.base import BackboneDef

__all__ = [
    "build_entry",
    "check_backbone_name",
    "get_backbone_def",
    "get_entry",
    "list_backbones",
    "register_backbone",
]

Factory = Callable[[], "BackboneDef"]

_REGISTRY: dict[str, Factory] = {}
_ENTRIES: dict[str, BackboneEntry] = {}


def register_backbone(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory() -> BackboneDef`` under ``name`` (names are unique)."""

    def decorate(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorate


def build_entry(entry: BackboneEntry) -> BackboneDef:
    """The definition an entry names, built from its spec, weights locations and options."""
    module, _, cls_name = entry.definition.partition(":")
    definition_class = getattr(importlib.import_module(module), cls_name)
    return definition_class(entry.spec, weights=entry.weights, **entry.options)


def _register_entry(entry: BackboneEntry) -> None:
    register_backbone(entry.spec.name)(lambda: build_entry(entry))
    _ENTRIES[entry.spec.name] = entry


for _entry in ENTRIES:
    _register_entry(_entry)
del _entry

for _name in ("swinunetr3d", "segresnet3d"):  # the 3D encoders: featx.backbones.volumetric, imported on first use
    register_backbone(_name)(lambda name=_name: importlib.import_module("featx.backbones.volumetric").definition(name))
del _name


def list_backbones() -> list[str]:
    """The registered backbone names (the paper's 13 families and variants), sorted.

    Any timm model name is accepted by ``load_backbone`` as well, without being listed here.
    """
    return sorted(_REGISTRY)


def get_entry(name: str) -> BackboneEntry | None:
    """The table row of a built-in backbone (None for plug-ins and timm names)."""
    entry = _ENTRIES.get(name)
    return entry if entry is not None and name in _REGISTRY else None


def check_backbone_name(name: str) -> None:
    """Refuse a name that is neither registered nor a timm model, without importing torch or timm."""
    if name not in _REGISTRY and not is_timm_model(name):
        raise BackboneError(_unknown(name))


def get_backbone_def(name: str) -> BackboneDef:
    """The definition for ``name``: registered, else a generic timm model; else BackboneError."""
    if name in _REGISTRY:
        return _REGISTRY[name]()
    check_backbone_name(name)
    from featx.backbones.timm_vit import generic_timm_def

    definition = generic_timm_def(name)
    if definition is None:
        raise BackboneError(_unknown(name))
    return definition


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(name, sorted(timm_model_names()), n=3, cutoff=0.75)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return (f"unknown backbone {name!r}: neither a featx backbone (`featx backbones` lists them) "
            f"nor a timm model name.{hint}")

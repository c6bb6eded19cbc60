"""The facts ``featx backbones`` lists (params, dims, layers, grids, local weights), without torch.

Built-in backbones are described from their table rows (:mod:`featx.backbones.catalog`); timm
names and plug-ins are measured by building them on the ``meta`` device
(:func:`featx.backbones.loader.measure_backbone`, which imports torch).
"""

from __future__ import annotations

from typing import Any

from featx.backbones.registry import check_backbone_name, get_entry
from featx.backbones.spec import BackboneEntry, first_found, listing_row
from featx.backbones.volume_specs import VOLUME_FACTS

__all__ = ["describe_backbone"]

#: the smallest input a CNN accepts (its total stride)
_CNN_MIN_SIZE = 32


def describe_backbone(name: str, sizes: tuple[int, ...] = (224, 448), n_last: int = 4) -> dict[str, Any]:
    """Facts for ``featx backbones``: params, feature dims, patch grids, local weights.

    Instant for the built-in names (read from their table rows); timm names and plug-ins are
    built on the meta device. An unknown name is a :class:`~featx.backbones.spec.BackboneError`.
    """
    if name in VOLUME_FACTS:
        return _describe_volume(name, sizes)
    entry = get_entry(name)
    if entry is None:
        check_backbone_name(name)
        from featx.backbones.loader import measure_backbone

        return measure_backbone(name, sizes=sizes, n_last=n_last)
    return _describe_entry(entry, tuple(sizes), n_last)


def _describe_volume(name: str, sizes: tuple[int, ...]) -> dict[str, Any]:
    """A 3D encoder's facts: its spec and stages (its grids are 3D: 'featx backbones' shows none)."""
    facts = VOLUME_FACTS[name]
    spec = facts["spec"]
    return listing_row(spec, params=None, feature_dim=facts["feature_dim"], layers=facts["layers"],
                       cls_policy="mean of the last stage", grids=dict.fromkeys(sizes), weights_found=None)


def _grid_side(entry: BackboneEntry, size: int) -> int | None:
    """The deepest layer's grid side at ``size``, or None where the network refuses that size."""
    shape, patch = entry.shape, entry.spec.patch_size
    if shape.stride:  # a CNN
        if size < _CNN_MIN_SIZE:
            return None
        side = size // shape.stride
        if shape.head_kernel > 1:
            side = max(side, shape.head_kernel) - shape.head_kernel + 1
        return side
    if size <= 0 or (patch and size % patch):
        return None
    return size // patch if patch else None


def _layer_names(entry: BackboneEntry, n_last: int) -> list[str]:
    """The ``n_last`` deepest layers' names (the deepest only if it has fewer), shallow -> deep."""
    count = entry.shape.layers
    if entry.shape.stride:
        names = [f"stage_{i}" for i in range(count - 1)] + ["pool"]
    else:
        names = [f"block_{i}" for i in range(count)]
    return names[-n_last:] if 1 <= n_last <= count else names[-1:]


def _describe_entry(entry: BackboneEntry, sizes: tuple[int, ...], n_last: int) -> dict[str, Any]:
    spec, shape = entry.spec, entry.shape
    grids: dict[int, list[int] | None] = {}
    params = None
    layers: list[str] = []
    for size in sizes:
        side = _grid_side(entry, size)
        grids[size] = None if side is None else [side, side]
        if side is not None and params is None:
            params = shape.params_at(side)
            layers = _layer_names(entry, n_last)
    return listing_row(spec, params=params, feature_dim=shape.dim if layers else None, layers=layers,
                       cls_policy=shape.cls_policy, grids=grids, weights_found=first_found(entry.weights))

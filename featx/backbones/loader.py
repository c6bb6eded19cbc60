"""``load_backbone``: name + resolution + weights -> a frozen feature extractor with provenance.

Order of work, so that a wrong checkpoint never leaves a partially loaded model:

1. build the architecture on the ``meta`` device (shapes only, no memory, no init cost);
2. read the weights file (or find the published one in the local caches, offline);
3. convert it to the architecture's key names, resize position embeddings to the grid;
4. check every name and shape against the meta model (first mismatch named, file named);
5. only then materialise the model and copy the tensors in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featx.backbones.base import BackboneDef, BackboneError, LoadedBackbone
from featx.backbones.registry import get_backbone_def
from featx.backbones.spec import first_found, listing_row
from featx.backbones.weights import (
    WeightsError,
    check_state_dict,
    expected_shapes,
    find_pretrained,
    read_state_dict,
    save_state_dict,
    sha256_file,
)

__all__ = ["load_backbone", "measure_backbone", "save_weights"]

CONFIG_VERSION = 1
_RESERVED_OVERRIDES = {"img_size", "image_size", "num_classes", "pretrained", "pretrained_cfg", "features_only"}


def load_backbone(
    name: str,
    *,
    img_size: int,
    weights: str | Path | None = None,
    random_init: bool = False,
    n_last: int = 4,
    patch_tokens: bool = False,
    model_overrides: dict | None = None,
    seed: int = 0,
) -> LoadedBackbone:
    """Load backbone ``name`` at ``img_size`` as a frozen feature extractor.

    ``weights=None, random_init=False`` means the published weights, looked up offline in the
    local caches (:mod:`featx.backbones.weights`); absent, a :class:`WeightsError` says where
    featx looked. ``weights=FILE`` loads that file (safetensors / pth / bin, published or
    timm format). ``random_init=True`` gives seeded random weights, recorded as
    ``weights_hash == "random-init"``. ``model_overrides`` change the architecture (tests, demos)
    and need ``random_init`` or a matching weights file.
    """
    definition = get_backbone_def(name)
    definition.check_img_size(int(img_size))
    img_size = int(img_size)
    overrides = _check_overrides(name, model_overrides, weights, random_init)
    if weights is not None and random_init:
        raise BackboneError(f"{name}: give either weights or random_init=True, not both")

    with torch.device("meta"):
        meta = definition.build(img_size, overrides)
    plan = definition.layer_plan(meta, int(n_last))

    random_policy = None
    if random_init:
        trunk = _build_seeded(definition, img_size, overrides, seed)
        random_policy = definition.after_random_init(trunk)
        weights_hash = weights_source = "random-init"
    else:
        if weights is not None:
            path = Path(weights).expanduser()
            if not path.exists():
                raise WeightsError(f"weights file {path} does not exist (given for backbone {name!r})")
            if path.is_dir():
                path = _weights_in_folder(path, name)
        else:
            path = find_pretrained(name, definition.weight_candidates())
        definition.check_weights_folder(path.parent)  # e.g. a HF snapshot's preprocessing config
        path = path.resolve()
        trunk = _load_checked(definition, meta, path, name, img_size, overrides, seed)
        weights_hash = sha256_file(path)
        weights_source = str(path)

    trunk.eval()
    trunk.requires_grad_(False)
    model = definition.make_extractor(trunk, plan, bool(patch_tokens), img_size)
    model.eval()
    model.requires_grad_(False)
    layer_names = [layer for layer, _ in plan]
    grid = definition.patch_grid(trunk, img_size)
    spec = definition.spec
    config: dict[str, Any] = {
        "featx_backbone_config": CONFIG_VERSION,
        "name": spec.name,
        "family": spec.family,
        "arch": definition.arch_config(),
        "img_size": img_size,
        "n_last": int(n_last),
        "layers": layer_names,
        "patch_tokens": bool(patch_tokens),
        "model_overrides": overrides,
        "final_norm": definition.final_norm,
        "cls_policy": definition.cls_policy,
        "pooled_policy": "global_avg_pool" if spec.family == "cnn" else "mean_patch_tokens",
        "registers_dropped": bool(getattr(trunk, "num_reg_tokens", 0) or getattr(trunk, "reg_token", None) is not None),
        "pos_embed_resize": definition.pos_embed_resize,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "patch_size": spec.patch_size,
        "patch_grid": list(grid) if grid else None,
        "random_init": bool(random_init),
        "seed": int(seed) if random_init else None,
    }
    if random_policy:
        config["random_init_policy"] = random_policy
    if spec.provenance or spec.licence:
        config["weights_provenance"] = {"origin": spec.provenance, "licence": spec.licence}
    try:
        json.dumps(config)
    except TypeError as exc:
        raise BackboneError(f"{name}: model_overrides must be JSON values ({exc})") from None
    return LoadedBackbone(
        model=model,
        spec=spec,
        layer_names=layer_names,
        feature_dims=definition.feature_dims(trunk, plan),
        img_size=img_size,
        weights_hash=weights_hash,
        weights_source=weights_source,
        random_init=bool(random_init),
        config=config,
    )


def _check_overrides(name: str, overrides: dict | None, weights: Any, random_init: bool) -> dict:
    overrides = dict(overrides or {})
    reserved = sorted(set(overrides) & _RESERVED_OVERRIDES)
    if reserved:
        raise BackboneError(f"{name}: model_overrides may not set {reserved} (use img_size= / featx's own options)")
    if overrides and weights is None and not random_init:
        raise BackboneError(
            f"{name}: model_overrides {sorted(overrides)} change the architecture, so the published weights "
            f"cannot fit; use random_init=True (--random-init) or pass a weights file of that architecture"
        )
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(overrides.items())}


def _build_seeded(definition: BackboneDef, img_size: int, overrides: dict, seed: int) -> nn.Module:
    """Random weights, deterministic in ``seed``, without disturbing the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return definition.build(img_size, overrides)


def _load_checked(definition: BackboneDef, meta: nn.Module, path: Path, name: str, img_size: int,
                  overrides: dict, seed: int) -> nn.Module:
    state_dict = read_state_dict(path, prefer=definition.checkpoint_keys)
    try:
        state_dict = definition.convert_state_dict(state_dict, meta)
        state_dict = definition.fix_shapes(state_dict, meta)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any conversion failure means the file does not fit
        raise WeightsError(f"weights file {path} cannot be converted for backbone {name!r}: {exc}") from None
    what = f"backbone {name!r} at img_size {img_size}" + (f" with overrides {overrides}" if overrides else "")
    check_state_dict(state_dict, expected_shapes(meta), path, what)

    # every tensor fits: now materialise. Without non-persistent buffers the meta model can be
    # filled directly (no random init of e.g. 1.1B parameters); otherwise build normally.
    persistent = set(meta.state_dict())
    non_persistent = {n for n, _ in meta.named_buffers()} - persistent
    if non_persistent:
        trunk = _build_seeded(definition, img_size, overrides, seed)
    else:
        trunk = meta.to_empty(device="cpu")
    with torch.no_grad():
        trunk.load_state_dict(state_dict, strict=True)
    return trunk


def save_weights(loaded: LoadedBackbone, path: str | Path) -> Path:
    """Write the backbone's weights (``.safetensors`` by suffix, else a torch pickle).

    The file reloads with ``load_backbone(name, img_size=..., weights=path)`` (plus the same
    ``model_overrides``) and gives bit-identical features.
    """
    return save_state_dict(loaded.model.trunk.state_dict(), path)


def measure_backbone(name: str, sizes: tuple[int, ...] = (224, 448), n_last: int = 4) -> dict[str, Any]:
    """:func:`featx.backbones.listing.describe_backbone`'s facts measured on the built network (meta device).

    The listing uses it for timm names and plug-ins; for the built-in names it reads the same facts
    from their table rows, and the tests hold the two equal.
    """
    definition = get_backbone_def(name)
    spec = definition.spec
    grids: dict[int, list[int] | None] = {}
    params = None
    dims: dict[str, int] = {}
    layers: list[str] = []
    for size in sizes:
        try:
            definition.check_img_size(size)
        except BackboneError:
            grids[size] = None
            continue
        with torch.device("meta"):
            trunk = definition.build(size, {})
        grid = definition.patch_grid(trunk, size)
        grids[size] = list(grid) if grid else None
        if params is None:
            params = sum(p.numel() for p in trunk.parameters())
            try:
                plan = definition.layer_plan(trunk, n_last)
            except BackboneError:
                plan = definition.layer_plan(trunk, 1)
            dims = definition.feature_dims(trunk, plan)
            layers = [layer for layer, _ in plan]
    return listing_row(spec, params=params, feature_dim=dims[layers[-1]] if layers else None, layers=layers,
                       cls_policy=definition.cls_policy, grids=grids,
                       weights_found=first_found(definition.weight_candidates()))



FOLDER_FILES = ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def _weights_in_folder(folder: Path, name: str) -> Path:
    """A folder (e.g. a Hugging Face snapshot) given as weights: its one known weights file."""
    for filename in FOLDER_FILES:
        if (folder / filename).is_file():
            return folder / filename
    raise WeightsError(
        f"weights folder {folder} (given for backbone {name!r}) holds none of {', '.join(FOLDER_FILES)}; "
        f"pass the weights file itself"
    )

"""timm Vision Transformers: the shared machinery (MAE and the supervised ViT-L/16 use it as is) and any timm name.

Features come from timm's ``forward_intermediates`` (one pass, no hooks):

* layers ``block_{i}`` for the ``n_last`` deepest blocks (0-based ``i``; ViT-L: ``block_20`` ..
  ``block_23``);
* the model's final norm is applied to every returned block (DINOv2's
  ``get_intermediate_layers(norm=True)``, MSN's ``forward_return_n_last_blocks``, MAE's and the
  supervised ViT's ``norm(x)[:, 0]``);
* ``cls`` = the class token, ``pooled`` = the mean of the patch tokens (prefix tokens such as
  registers excluded), ``patch`` = the patch tokens as a ``(B, h, w, D)`` grid.

Position embeddings are resized once, when weights are loaded, to the grid of ``img_size``
(each family says how, as its authors do); the model is then built at exactly that size.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from featx.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BackboneDef, BackboneError, BackboneSpec
from featx.backbones.locations import TIMM_HF_FILES, WeightCandidate, timm_candidates
from featx.backbones.weights import strip_prefixes

WRAPPER_PREFIXES = ("module.", "trunk.", "_orig_mod.")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def resize_abs_pos_embed(
    pos_embed: torch.Tensor,
    new_grid: tuple[int, int],
    num_prefix_tokens: int,
    mode: str = "bicubic",
    antialias: bool = False,
    offset: float | None = None,
) -> torch.Tensor:
    """Resize a ``(1, prefix + M*M, D)`` position embedding to ``new_grid`` (prefix kept as is).

    ``offset`` reproduces DINOv2's ``interpolate_pos_encoding`` (``scale_factor = (g + 0.1) / M``);
    without it the target size is given directly (MAE/MSN/timm style).
    """
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    n_old, dim = grid.shape[1], grid.shape[2]
    side = math.isqrt(n_old)
    if side * side != n_old:
        raise ValueError(f"position embedding of {n_old} patch positions is not a square grid")
    if (side, side) == tuple(new_grid):
        return pos_embed
    image = grid.reshape(1, side, side, dim).permute(0, 3, 1, 2).float()
    if offset is not None:
        scale = ((new_grid[0] + offset) / side, (new_grid[1] + offset) / side)
        image = F.interpolate(image, scale_factor=scale, mode=mode, antialias=antialias)
    else:
        image = F.interpolate(image, size=tuple(new_grid), mode=mode, antialias=antialias, align_corners=False)
    if tuple(image.shape[-2:]) != tuple(new_grid):
        raise ValueError(f"position embedding resized to {tuple(image.shape[-2:])}, wanted {tuple(new_grid)}")
    grid = image.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


def drop_head(state_dict: dict[str, torch.Tensor], trunk: nn.Module, head_names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Drop classifier tensors (``head.*``, ``fc.*`` ...) the head-less trunk has no place for."""
    expected = trunk.state_dict().keys()
    out = {}
    for key, value in state_dict.items():
        root = next((h for h in head_names if key == h or key.startswith(h + ".")), None)
        if root is not None and not any(e == root or e.startswith(root + ".") for e in expected):
            continue
        out[key] = value
    return out


def _inference_context(enabled: bool):
    return torch.inference_mode() if enabled and not torch.is_inference_mode_enabled() else contextlib.nullcontext()


def _timm():
    import timm

    return timm


class ViTExtractor(nn.Module):
    """``forward(x) -> {block_i: {"cls", "pooled"[, "patch"]}}`` over a timm VisionTransformer."""

    def __init__(self, trunk: nn.Module, plan: list[tuple[str, int]], patch_tokens: bool, norm: bool,
                 grid: tuple[int, int]) -> None:
        super().__init__()
        self.trunk = trunk
        self.names = [name for name, _ in plan]
        self.indices = [index for _, index in plan]
        self.patch_tokens = patch_tokens
        self.norm = norm
        self.grid = grid
        self.num_prefix = int(getattr(trunk, "num_prefix_tokens", 0))
        self.has_cls = getattr(trunk, "cls_token", None) is not None
        self.inference_only = True

    def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        with _inference_context(self.inference_only):
            outs = self.trunk.forward_intermediates(
                x,
                indices=self.indices,
                return_prefix_tokens=self.num_prefix > 0,
                norm=self.norm,
                output_fmt="NLC",
                intermediates_only=True,
            )
            result: dict[str, dict[str, torch.Tensor]] = {}
            for name, out in zip(self.names, outs):
                patch, prefix = out if self.num_prefix > 0 else (out, None)
                pooled = patch.mean(dim=1)
                layer = {"cls": self.cls_feature(patch, prefix, pooled), "pooled": pooled}
                if self.patch_tokens:
                    layer["patch"] = patch.reshape(patch.shape[0], self.grid[0], self.grid[1], patch.shape[-1])
                result[name] = layer
            return result

    def cls_feature(self, patch: torch.Tensor, prefix: torch.Tensor | None, pooled: torch.Tensor) -> torch.Tensor:
        """The layer's ``cls``: the class token (first prefix token), else the patch mean."""
        return prefix[:, 0] if self.has_cls and prefix is not None else pooled


# --------------------------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------------------------
class TimmArchDef(BackboneDef):
    """A backbone built from a timm architecture name; its weights live at ``timm/<arch>.<tag>``.

    ``weights`` (where the published weights may sit) defaults to featx's folder, the HF repository
    ``timm/<arch>.<tag>`` and ``torch_hub_files``; the registry's tables give it explicitly.
    """

    def __init__(self, spec: BackboneSpec, arch: str, tag: str | None = None, kwargs: dict[str, Any] | None = None,
                 torch_hub_files: tuple[str, ...] = (), hf_files: tuple[str, ...] = TIMM_HF_FILES,
                 weights: tuple[WeightCandidate, ...] | None = None) -> None:
        self.spec = spec
        self.arch = arch
        self.tag = tag
        self.kwargs = dict(kwargs or {})
        if weights is None:
            weights = timm_candidates(spec.name, arch, tag, hf_files, torch_hub_files)
        self.weights = tuple(weights)

    def create(self, overrides: dict[str, Any], **kwargs: Any) -> nn.Module:
        """``timm.create_model`` without a head; a bad override is a BackboneError."""
        try:
            return _timm().create_model(self.arch, pretrained=False, num_classes=0, **kwargs,
                                        **{**self.kwargs, **overrides})
        except (TypeError, ValueError, AssertionError) as exc:
            raise BackboneError(f"{self.spec.name}: bad model override(s) {sorted(overrides)}: {exc}") from None

    def arch_config(self) -> dict[str, Any]:
        return {"source": "timm", "arch": self.arch, "tag": self.tag, "arch_kwargs": self.kwargs}

    @property
    def hf_repo(self) -> str | None:
        return f"timm/{self.arch}.{self.tag}" if self.tag else None


class TimmViTDef(TimmArchDef):
    """A timm ``VisionTransformer`` architecture plus where its published weights live."""

    final_norm = "per_block"
    cls_policy = "cls_token"

    def __init__(
        self,
        spec: BackboneSpec,
        arch: str,
        tag: str | None = None,
        kwargs: dict[str, Any] | None = None,
        pos_resize: dict[str, Any] | None = None,
        torch_hub_files: tuple[str, ...] = (),
        hf_files: tuple[str, ...] = TIMM_HF_FILES,
        weights: tuple[WeightCandidate, ...] | None = None,
    ) -> None:
        super().__init__(spec, arch, tag, kwargs, torch_hub_files, hf_files, weights)
        self.pos_resize = dict(pos_resize or {"mode": "bicubic", "antialias": True})
        if not spec.has_cls_token:
            self.cls_policy = "mean_patch"
        self.pos_embed_resize = _describe_resize(self.pos_resize)

    # architecture
    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        return self.create(overrides, img_size=img_size)

    def after_random_init(self, trunk: nn.Module) -> str | None:
        """LayerScale gammas -> 1.0 in random models.

        DINOv2's (and DINOv3's) LayerScale starts at 1e-5, which makes a *random* network almost the identity
        on the residual stream: its class token would not depend on the image at all, and a
        random-features baseline would be meaningless. Pretrained weights are unaffected.
        """
        from timm.layers import LayerScale

        # timm's LayerScale modules, and Eva's (DINOv3, EVA) bare gamma_1 / gamma_2 parameters
        gammas = [m.gamma for m in trunk.modules() if isinstance(m, LayerScale)]
        gammas += [p for n, p in trunk.named_parameters() if n.endswith((".gamma_1", ".gamma_2"))]
        with torch.no_grad():
            for gamma in gammas:
                gamma.fill_(1.0)
        return "layer_scale_gamma=1.0" if gammas else None

    def layer_plan(self, trunk: nn.Module, n_last: int) -> list[tuple[str, int]]:
        depth = len(trunk.blocks)
        return _last_blocks(self.spec.name, depth, n_last)

    def make_extractor(self, trunk, plan, patch_tokens, img_size):
        grid = tuple(trunk.patch_embed.dynamic_feat_size((img_size, img_size)))
        return ViTExtractor(trunk, plan, patch_tokens, norm=self.final_norm == "per_block", grid=grid)

    def feature_dims(self, trunk, plan):
        return {name: int(trunk.embed_dim) for name, _ in plan}

    def patch_grid(self, trunk, img_size):
        return tuple(int(g) for g in trunk.patch_embed.dynamic_feat_size((img_size, img_size)))

    # weights
    def convert_state_dict(self, state_dict, trunk):
        state_dict = strip_prefixes(state_dict, WRAPPER_PREFIXES)
        return drop_head(state_dict, trunk, ("head",))

    def fix_shapes(self, state_dict, trunk):
        pos = state_dict.get("pos_embed")
        target = getattr(trunk, "pos_embed", None)
        if pos is None or target is None or pos.shape == target.shape:
            return state_dict
        if pos.ndim != 3 or pos.shape[-1] != target.shape[-1]:
            return state_dict  # let the strict check report it
        prefix = 0 if getattr(trunk, "no_embed_class", False) else int(getattr(trunk, "num_prefix_tokens", 1))
        try:
            resized = resize_abs_pos_embed(pos, tuple(trunk.patch_embed.grid_size), prefix, **self.pos_resize)
        except ValueError:
            return state_dict
        return {**state_dict, "pos_embed": resized}


def _describe_resize(policy: dict[str, Any]) -> str:
    text = f"{policy.get('mode', 'bicubic')}, antialias={policy.get('antialias', False)}"
    if policy.get("offset") is not None:
        text += f", scale_factor=(g+{policy['offset']})/M"
    return text


def _last_blocks(name: str, depth: int, n_last: int) -> list[tuple[str, int]]:
    if n_last < 1:
        raise BackboneError(f"n_last must be >= 1, got {n_last}")
    if n_last > depth:
        raise BackboneError(f"{name}: n_last={n_last} but the model has only {depth} blocks")
    return [(f"block_{i}", i) for i in range(depth - n_last, depth)]


# --------------------------------------------------------------------------------------------
# any other timm name
# --------------------------------------------------------------------------------------------
def generic_timm_def(name: str) -> BackboneDef | None:
    """A definition for any timm model name (``arch`` or ``arch.tag``), or None if timm lacks it."""
    timm = _timm()
    arch, _, tag = name.partition(".")
    if not timm.is_model(name) and not timm.is_model(arch):
        return None
    with torch.device("meta"):
        try:
            probe = timm.create_model(name, pretrained=False, num_classes=0)
        except Exception as exc:  # noqa: BLE001 - timm raises many kinds here
            raise BackboneError(f"timm cannot build {name!r}: {exc}") from None
    cfg = dict(getattr(probe, "pretrained_cfg", {}) or {})
    tag = tag or cfg.get("tag") or None
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    native = int(cfg.get("input_size", (3, 224, 224))[-1])
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer
    from timm.models.vision_transformer_sam import VisionTransformerSAM

    if isinstance(probe, (VisionTransformer, Eva)):
        has_cls = getattr(probe, "cls_token", None) is not None
        spec = BackboneSpec(
            name=name, family="timm_vit", mean=mean, std=std,  # type: ignore[arg-type]
            patch_size=int(probe.patch_embed.patch_size[0]), native_size=native, has_cls_token=has_cls,
            description=f"timm {arch}" + (f".{tag}" if tag else "") + " (generic timm ViT)",
        )
        return TimmViTDef(spec, arch=arch, tag=tag, torch_hub_files=_url_file(cfg))
    if isinstance(probe, VisionTransformerSAM):
        from featx.backbones.sam import SamDef

        spec = BackboneSpec(
            name=name, family="sam", mean=mean, std=std, patch_size=int(probe.patch_embed.patch_size[0]),  # type: ignore[arg-type]
            native_size=native, has_cls_token=False, description=f"timm {arch} (generic SAM image encoder)",
        )
        return SamDef(spec, arch=arch, tag=tag)
    if hasattr(probe, "forward_intermediates") and getattr(probe, "feature_info", None):
        from featx.backbones.cnn import TimmCNNDef

        spec = BackboneSpec(
            name=name, family="cnn", mean=mean, std=std, patch_size=None, native_size=native,  # type: ignore[arg-type]
            has_cls_token=False, description=f"timm {arch}" + (f".{tag}" if tag else "") + " (generic timm CNN)",
        )
        return TimmCNNDef(spec, arch=arch, tag=tag, torch_hub_files=_url_file(cfg))
    raise BackboneError(
        f"timm model {name!r} ({type(probe).__name__}) has no forward_intermediates featx can use; "
        f"supported: timm VisionTransformer, SAM ViT, and CNNs with forward_intermediates"
    )


def _url_file(cfg: dict[str, Any]) -> tuple[str, ...]:
    url = cfg.get("url") or ""
    name = url.rsplit("/", 1)[-1] if url else ""
    return (name,) if name.endswith((".pth", ".bin", ".safetensors", ".pt")) else ()

"""Native 3D encoders: MONAI's SwinUNETR Swin-ViT encoder and a SegResNet encoder.

Both take a ``(B, C, D, H, W)`` volume (``img_size`` = the cube edge of one input tile) and return,
per encoder stage, ``{"cls", "pooled", "patch"}``: ``cls`` = ``pooled`` = the stage's global
average, ``patch`` = its ``(B, d, h, w, F)`` feature map (channels last, as the 2D patch tokens).
Stages are named ``stage_0`` (shallowest, finest) .. ``stage_N`` (deepest); ``n_last`` takes the
deepest ones.

* ``swinunetr3d``: ``monai.networks.nets.swin_unetr.SwinTransformer`` (SwinUNETR's ``swinViT``),
  5 stages at strides 2, 4, 8, 16, 32 with widths ``feature_size * (1, 2, 4, 8, 16)``; each stage
  through the parameter-free layer norm SwinUNETR applies (``normalize=True``). Checkpoints in the
  published SwinUNETR layout load: a full SwinUNETR state dict (MONAI's; SuPreM / VoCo releases wrap it
  in ``net`` / ``state_dict`` and ``module.`` / ``backbone.`` prefixes) with keys
  ``[module.][backbone.]swinViT.<name>`` maps to this encoder's ``<name>`` (SwinUNETR v1; v2's extra
  ``layers*c`` blocks are refused); everything outside ``swinViT.`` (``encoder1..10``,
  ``decoder1..5``, ``out``, SSL heads) is the decoder or a head and is dropped by that rule.
* ``segresnet3d``: the encoder of ``monai.networks.nets.SegResNet`` (``convInit`` + ``down_layers``),
  stages at strides 1, 2, 4, 8 (``blocks_down`` sets their number) with widths
  ``init_filters * 2**i``. Checkpoints in MONAI's SegResNet layout (e.g. the MONAI bundles'
  ``model.pt``) with keys ``[module.|model.]convInit.*`` / ``down_layers.*`` load; ``up_layers``,
  ``up_samples`` and ``conv_final`` are the decoder and are dropped by that rule.

Inputs are already windowed to [0, 1] by :mod:`featx.datasets.volumes` (mean 0, std 1 here: no
further normalisation); ``in_channels`` (an override) must equal the number of HU windows.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from featx.backbones.base import BackboneDef, BackboneError
from featx.backbones.volume_specs import SEGRESNET3D, SWINUNETR3D
from featx.backbones.weights import WeightsError

WRAPPERS = ("module.", "backbone.", "model.")


def _strip_wrappers(key: str) -> str:
    """``module.backbone.swinViT.x`` -> ``swinViT.x`` (DataParallel / SuPreM's ``backbone`` / bundle ``model``)."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPERS:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


class VolumeExtractor(nn.Module):
    """``forward(x: (B, C, D, H, W)) -> {stage: {"cls", "pooled"[, "patch"]}}`` for the planned stages."""

    def __init__(self, trunk: nn.Module, plan: list[tuple[str, int]], patch_tokens: bool) -> None:
        super().__init__()
        self.trunk = trunk
        self.plan = plan
        self.patch_tokens = patch_tokens

    def forward(self, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        with torch.inference_mode():
            stages = encoder_stages(self.trunk, x)
            out = {}
            for name, index in self.plan:
                fmap = stages[index]
                pooled = fmap.mean(dim=(2, 3, 4))
                layer = {"cls": pooled, "pooled": pooled}
                if self.patch_tokens:
                    layer["patch"] = fmap.permute(0, 2, 3, 4, 1)
                out[name] = layer
            return out


def encoder_stages(trunk: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Every stage's ``(B, F, d, h, w)`` map, shallow -> deep (Swin: through its parameter-free norm)."""
    if isinstance(trunk, SegResEncoder):
        return trunk.stages(x)
    return list(trunk(x, True))  # MONAI SwinTransformer.forward(x, normalize=True)


def swin_encoder(in_channels: int, feature_size: int, depths: tuple[int, ...], num_heads: tuple[int, ...],
                 window_size: int) -> nn.Module:
    """SwinUNETR's ``swinViT`` exactly as MONAI builds it (so its state-dict names are MONAI's)."""
    from monai.networks.nets.swin_unetr import SwinTransformer

    if len(depths) != 4 or len(num_heads) != 4:
        raise BackboneError(f"swinunetr3d: depths and num_heads need 4 entries, got {list(depths)} / {list(num_heads)}")
    target = torch.empty(0).device  # a ``torch.device("meta")`` context: MONAI's __init__ calls .item(), so
    with torch.device("cpu"):  # build on the CPU and move the shapes to meta
        swin = SwinTransformer(in_chans=in_channels, embed_dim=feature_size, window_size=(window_size,) * 3,
                               patch_size=(2, 2, 2), depths=depths, num_heads=num_heads, spatial_dims=3)
    return swin.to(target) if target.type == "meta" else swin


class SegResEncoder(nn.Module):
    """SegResNet's encoder (``convInit`` + ``down_layers``) under its MONAI names."""

    def __init__(self, in_channels: int, init_filters: int, blocks_down: tuple[int, ...]) -> None:
        super().__init__()
        from monai.networks.nets import SegResNet

        groups = min(8, init_filters)
        net = SegResNet(spatial_dims=3, init_filters=init_filters, in_channels=in_channels, out_channels=2,
                        blocks_down=blocks_down, blocks_up=(1,) * (len(blocks_down) - 1),
                        norm=("GROUP", {"num_groups": groups}))
        self.convInit = net.convInit
        self.down_layers = net.down_layers

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.convInit(x)
        out = []
        for down in self.down_layers:
            x = down(x)
            out.append(x)
        return out


class VolumeDef(BackboneDef):
    """What both 3D encoders share: stage plan, extractor, input-size check, channels-last maps."""

    final_norm = "per_stage"
    cls_policy = "global_avg_pool"
    #: the encoder's total stride (inputs must be a multiple of it)
    total_stride = 32
    defaults: dict[str, Any] = {}

    def settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(self.defaults))
        if unknown:
            raise BackboneError(f"{self.spec.name}: unknown model_overrides {unknown}; known: {sorted(self.defaults)}")
        return {**self.defaults, **overrides}

    def check_img_size(self, img_size: int) -> None:
        if img_size <= 0 or img_size % self.total_stride:
            raise BackboneError(
                f"{self.spec.name}: tile size {img_size} is not a positive multiple of the encoder's total stride "
                f"{self.total_stride} (use e.g. {self.total_stride * max(1, img_size // self.total_stride)})"
            )

    def layer_plan(self, trunk: nn.Module, n_last: int) -> list[tuple[str, int]]:
        n = len(self.widths(trunk))
        if not 1 <= n_last <= n:
            raise BackboneError(f"{self.spec.name}: n_last={n_last} but the encoder has {n} stages")
        return [(f"stage_{i}", i) for i in range(n - n_last, n)]

    def make_extractor(self, trunk, plan, patch_tokens, img_size):
        return VolumeExtractor(trunk, plan, patch_tokens)

    def feature_dims(self, trunk, plan):
        widths = self.widths(trunk)
        return {name: widths[index] for name, index in plan}

    def patch_grid(self, trunk, img_size):
        return None  # 3D: per-stage grids are img_size // stride (see featx.pipeline.volume_extract)

    @abc.abstractmethod
    def widths(self, trunk: nn.Module) -> list[int]:
        """Channels of each stage's output, shallow to deep."""


class SwinUNETRDef(VolumeDef):
    spec = SWINUNETR3D
    defaults = {"in_channels": 1, "feature_size": 48, "depths": [2, 2, 2, 2], "num_heads": [3, 6, 12, 24],
                "window_size": 7}
    checkpoint_keys = ("state_dict", "net", "model")

    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        s = self.settings(overrides)
        return swin_encoder(int(s["in_channels"]), int(s["feature_size"]), tuple(s["depths"]), tuple(s["num_heads"]),
                            int(s["window_size"]))

    def widths(self, trunk):
        return [int(trunk.embed_dim) * 2**i for i in range(5)]

    def arch_config(self):
        return {"source": "monai.networks.nets.swin_unetr.SwinTransformer", "checkpoint_prefix": "swinViT."}

    def convert_state_dict(self, state_dict, trunk):
        out = {}
        for key, value in state_dict.items():
            key = _strip_wrappers(key)
            if key.startswith("swinViT."):
                out[key[len("swinViT."):]] = value
        if not out:
            first = next(iter(state_dict), "<empty>")
            raise WeightsError(
                f"no tensor under 'swinViT.' (SwinUNETR layout) in the checkpoint; its first tensor is {first!r}"
            )
        return out


class SegResNetDef(VolumeDef):
    spec = SEGRESNET3D
    defaults = {"in_channels": 1, "init_filters": 16, "blocks_down": [1, 2, 2, 4]}
    total_stride = 8  # four stages; a tile must also divide by 2**(stages - 1) for other ``blocks_down``
    checkpoint_keys = ("state_dict", "net", "model")

    def build(self, img_size: int, overrides: dict[str, Any]) -> nn.Module:
        s = self.settings(overrides)
        return SegResEncoder(int(s["in_channels"]), int(s["init_filters"]), tuple(s["blocks_down"]))

    def widths(self, trunk):
        first = trunk.convInit.conv.out_channels
        return [first * 2**i for i in range(len(trunk.down_layers))]

    def arch_config(self):
        return {"source": "monai.networks.nets.SegResNet (convInit + down_layers)", "checkpoint_prefix": ""}

    def convert_state_dict(self, state_dict, trunk):
        out = {}
        for key, value in state_dict.items():
            key = _strip_wrappers(key)
            if key.startswith(("convInit.", "down_layers.")):
                out[key] = value
        if not out:
            first = next(iter(state_dict), "<empty>")
            raise WeightsError(
                f"no tensor under 'convInit.' / 'down_layers.' (SegResNet layout) in the checkpoint; its first "
                f"tensor is {first!r}"
            )
        return out


def definition(name: str) -> BackboneDef:
    """The definition of 3D encoder ``name`` (the registry calls this on first use)."""
    return {"swinunetr3d": SwinUNETRDef, "segresnet3d": SegResNetDef}[name]()

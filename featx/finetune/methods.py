"""The models being fine-tuned and what each method lets train.

:class:`TunedBackbone` is a backbone with a head on its features (the classifier here, the
segmenter in :mod:`featx.finetune.segmenter`); :func:`apply_method` sets what trains:

* ``full``: every backbone tensor (backbone learning rate) and the head (head learning rate);
* ``lora``: LoRA adapters injected by ``peft`` into the named modules (the backbone's own
  tensors frozen) and the head;
* ``bitfit``: the backbone's biases only, and the head;
* ``linear``: the head only (the frozen-backbone control).
"""

from __future__ import annotations

import abc
import contextlib

import torch
from torch import nn

from featx.backbones import LoadedBackbone
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.data import as_rgb


class TunedBackbone(nn.Module, abc.ABC):
    """uint8 pixels (grey or RGB) -> the backbone's own normalisation -> its features -> ``head``.

    Subclasses build ``head`` and say in :meth:`decode` what it reads of the backbone's output
    ``{layer: {"cls", "pooled"[, "patch"]}}``.
    """

    head: nn.Module

    def __init__(self, backbone: LoadedBackbone) -> None:
        super().__init__()
        self.backbone = backbone.model
        self.backbone.inference_only = False  # the extractors default to inference mode (frozen use)
        self.register_buffer("mean", torch.tensor(backbone.spec.mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(backbone.spec.std).view(1, 3, 1, 1) * 255.0, persistent=False)

    @property
    def trunk(self) -> nn.Module:
        return self.backbone.trunk

    @property
    def frozen(self) -> bool:
        """Whether no backbone tensor trains (the linear control)."""
        return not any(p.requires_grad for p in self.backbone.parameters())

    def train(self, mode: bool = True) -> TunedBackbone:
        """A frozen backbone (the linear control) stays in eval mode: no dropout in its features."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    @abc.abstractmethod
    def decode(self, features: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """The head's output from the backbone's features."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (as_rgb(pixels).float() - self.mean) / self.std
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            features = self.backbone(x)
        return self.decode(features)


class Classifier(TunedBackbone):
    """The deepest block's CLS (after the model's final norm) -> one linear head."""

    def __init__(self, backbone: LoadedBackbone, n_out: int) -> None:
        super().__init__(backbone)
        self.layer = backbone.layer_names[-1]
        self.head = nn.Linear(backbone.feature_dims[self.layer], n_out)

    def decode(self, features: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        return self.head(features[self.layer]["cls"].float())


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _module_matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def check_lora_targets(trunk: nn.Module, targets: tuple[str, ...]) -> None:
    """Refuse targets that name no module, listing the module names that exist."""
    names = [name for name, _ in trunk.named_modules() if name]
    missing = [t for t in targets if not any(_module_matches(name, t) for name in names)]
    if missing:
        leaves = sorted({name.rsplit(".", 1)[-1] for name, module in trunk.named_modules()
                         if name and list(module.parameters(recurse=False)) and not name.rsplit(".", 1)[-1].isdigit()})
        raise FinetuneError(
            f"--lora-target {', '.join(missing)} matches no module of the backbone; names of modules with weights: "
            f"{', '.join(leaves)}"
        )


def apply_method(model: TunedBackbone, config: FinetuneConfig) -> list[dict]:
    """Set what trains for ``config.method``; return the optimiser's parameter groups."""
    model.requires_grad_(False)
    trunk = model.trunk
    if config.method == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        check_lora_targets(trunk, config.lora_targets)
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            bias="none",
        )
        inject_adapter_in_model(lora, trunk)
        trunk.requires_grad_(False)
        for name, param in trunk.named_parameters():
            if "lora_" in name:
                param.requires_grad_(True)
    elif config.method == "bitfit":
        for name, param in trunk.named_parameters():
            if name.endswith("bias"):
                param.requires_grad_(True)
    elif config.method == "full":
        trunk.requires_grad_(True)
    model.head.requires_grad_(True)
    backbone_params = [p for p in trunk.parameters() if p.requires_grad]
    groups = [{"params": list(model.head.parameters()), "lr": config.head_lr, "name": "head"}]
    if backbone_params:
        groups.append({"params": backbone_params, "lr": config.effective_backbone_lr, "name": "backbone"})
    if config.grad_checkpointing and config.method != "linear":
        if not hasattr(trunk, "set_grad_checkpointing"):
            raise FinetuneError(f"{type(trunk).__name__} has no gradient checkpointing; run without --grad-checkpointing")
        trunk.set_grad_checkpointing(True)
    return groups


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies (on the CPU) of the tensors that train: what a checkpoint must hold."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put saved trainable tensors back (names and shapes must match exactly)."""
    params = dict(model.named_parameters())
    expected = {name for name, p in params.items() if p.requires_grad}
    if set(state) != expected:
        raise FinetuneError("the checkpoint's trainable tensors do not match this model; start a new --run-dir")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)

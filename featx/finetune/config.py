"""What one fine-tuning run is: method, optimisation, LoRA settings, seed; and its fingerprint.

The fingerprint (a hash of everything that changes the trained model) is written into
every checkpoint; a checkpoint with another fingerprint is refused, never resumed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from featx.decoders.loss import LOSSES
from featx.decoders.models import DECODERS
from featx.finetune.job import LORA_TARGETS

METHODS = ("full", "lora", "bitfit", "linear")
SCRATCH_MODELS = ("unet", "transunet")

# PROTOCOL.md: LoRA r=48, alpha=16 on qkv, fc1, fc2, dropout 0.1; full fine-tuning backbone lr 1e-5.


class FinetuneError(ValueError):
    """A fine-tuning run cannot start (or resume) as asked; the message says why and what to do."""


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of one run (all recorded in every result record)."""

    method: str = "lora"
    epochs: int = 10
    batch_size: int = 32
    head_lr: float = 1e-3
    backbone_lr: float | None = None  # None: the method's default (full 1e-5, lora/bitfit 1e-4)
    weight_decay: float = 0.0
    patience: int = 3  # epochs without a better validation score before stopping
    seed: int = 0
    lora_r: int = 48
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = field(default=LORA_TARGETS)
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints (0: at epoch ends only)
    grad_checkpointing: bool = False
    decoder: str | None = None  # segmentation: seg_unet / seg_linear on the backbone's patch tokens
    seg_loss: str = "dice"  # segmentation: dice, or dice_ce (+ pixel cross-entropy), as the probes

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise FinetuneError(f"--method {self.method!r} is unknown; expected one of {', '.join(METHODS)}")
        for name in ("epochs", "batch_size", "lora_r"):
            if getattr(self, name) < 1:
                raise FinetuneError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.patience < 1:
            raise FinetuneError(f"--patience must be at least 1, got {self.patience}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise FinetuneError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if self.method == "lora" and not self.lora_targets:
            raise FinetuneError("--lora-target: give at least one module name (default qkv, fc1, fc2)")
        if self.decoder is not None and self.decoder not in DECODERS:
            raise FinetuneError(f"--decoder {self.decoder!r} is unknown; expected one of {', '.join(DECODERS)}")
        if self.seg_loss not in LOSSES:
            raise FinetuneError(f"--seg-loss {self.seg_loss!r} is unknown; expected one of {', '.join(LOSSES)}")

    @property
    def effective_backbone_lr(self) -> float:
        """The learning rate of the backbone's trainable tensors (0 for the linear control)."""
        if self.method == "linear":
            return 0.0
        if self.backbone_lr is not None:
            return self.backbone_lr
        return 1e-5 if self.method == "full" else 1e-4

    def hyperparameters(self) -> dict[str, Any]:
        """JSON-able form for records (LoRA and decoder settings only where they apply)."""
        data = asdict(self)
        data["lora_targets"] = list(self.lora_targets)
        data["backbone_lr"] = self.effective_backbone_lr
        if self.method != "lora":
            for key in ("lora_r", "lora_alpha", "lora_dropout", "lora_targets"):
                data.pop(key)
        if self.decoder is None:
            data.pop("decoder"), data.pop("seg_loss")
        return data


def fingerprint(parts: dict[str, Any]) -> str:
    """A short stable hash of JSON-able run inputs (config, data, backbone, sizes)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

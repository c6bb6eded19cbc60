"""Training a decoder on cached patch tokens: Dice or Dice+CE, Adam, cosine decay.

The loss is the soft Dice over the foreground classes (softmax probabilities, summed
over the batch's pixels, background excluded), averaged over classes; ``dice_ce`` adds
the pixel cross-entropy. Adam, cosine decay of the learning rate to 0 over all steps,
no augmentation (the tokens are cached). On CUDA the forward runs under bf16 autocast;
everything also runs on the CPU.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from featx.decoders.loss import LOSSES, segmentation_loss
from featx.decoders.models import build_decoder
from featx.probes.segmentation.data import batch_order


@dataclass(frozen=True)
class TrainConfig:
    """One decoder training: what the records call its hyper-parameters."""

    decoder: str
    lr: float
    epochs: int = 20
    batch_size: int = 16
    loss: str = "dice"
    optimizer: str = "adam"
    schedule: str = "cosine"

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown segmentation loss {self.loss!r}; expected one of {LOSSES}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"epochs, batch size and lr must be positive (got {self.epochs}, {self.batch_size}, {self.lr})")

    def to_dict(self) -> dict:
        return asdict(self)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def to_device(tokens: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Stored (float16) tokens to float32 tensors on ``device`` (converted there, after the copy)."""
    return [torch.from_numpy(np.ascontiguousarray(t)).to(device, non_blocking=True).float() for t in tokens]


def fit(
    source,
    positions: np.ndarray,
    config: TrainConfig,
    *,
    dims: Sequence[int],
    n_classes: int,
    out_size: int,
    device: str = "cpu",
    seed: int = 0,
) -> nn.Module:
    """Train one decoder on ``positions`` read from ``source`` (StoreBatches / MemoryBatches)."""
    torch_device = torch.device(device)
    torch.manual_seed(seed)
    model = build_decoder(config.decoder, dims, n_classes, out_size).to(torch_device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = math.ceil(len(positions) / config.batch_size)
    total = max(1, steps_per_epoch * config.epochs)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    model.train()
    # every epoch's batches in one stream, so the reader reads ahead across epoch boundaries
    order = [b for epoch in range(config.epochs) for b in batch_order(positions, config.batch_size, seed * 100_003 + epoch)]
    for tokens, masks, _ in source.batches(order):
        if len(masks) < 2 and any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
            continue  # BatchNorm cannot train on a batch of one
        x = to_device(tokens, torch_device)
        y = torch.from_numpy(masks).to(torch_device)
        with _autocast(torch_device):
            logits = model(x)
        loss = segmentation_loss(logits, y, n_classes, config.loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    return model


@torch.no_grad()
def predict(source, model: nn.Module, positions: np.ndarray, *, batch_size: int = 16, device: str = "cpu") -> np.ndarray:
    """``(n, S, S)`` uint8 arg-max class ids of ``positions``, in that order (tokens only)."""
    torch_device = torch.device(device)
    model.eval()
    out = np.zeros((len(positions), model.out_size, model.out_size), dtype=np.uint8)
    where = {int(p): i for i, p in enumerate(positions)}
    for tokens, _, batch in source.batches(batch_order(positions, batch_size, None), with_masks=False):
        with _autocast(torch_device):
            logits = model(to_device(tokens, torch_device))
        labels = logits.float().argmax(1).to(torch.uint8).cpu().numpy()
        out[[where[int(p)] for p in batch]] = labels
    return out


"""The `featx probe` options of the segmentation decoders, checked before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from featx.decoders.loss import LOSSES
from featx.probes.segmentation.protocol import SegOptions


def seg_options(
    lrs: str, epochs: int, batch_size: int, loss: str, fewshot_lr: float, save_masks: Path | None, in_memory: bool = False
) -> SegOptions:
    """``SegOptions`` from the command line; a bad value is a one-line ``BadParameter``."""
    try:
        rates = tuple(float(x) for x in lrs.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"--seg-lrs: expected comma-separated numbers, got {lrs!r}") from None
    if not rates or any(r <= 0 for r in rates):
        raise typer.BadParameter(f"--seg-lrs: expected positive learning rates, got {lrs!r}")
    if loss not in LOSSES:
        raise typer.BadParameter(f"--seg-loss: expected one of {list(LOSSES)}, got {loss!r}")
    if epochs < 1 or batch_size < 1 or fewshot_lr <= 0:
        raise typer.BadParameter("--seg-epochs, --seg-batch-size and --seg-fewshot-lr must be positive")
    if save_masks is not None:
        existing = next((p for p in (save_masks, *save_masks.parents) if p.exists()), None)
        if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK)):
            raise typer.BadParameter(f"--save-masks: {existing} is not a writable folder; choose another folder")
    return SegOptions(lrs=rates, epochs=epochs, batch_size=batch_size, loss=loss, fewshot_lr=fewshot_lr,
                      save_masks=save_masks, in_memory=in_memory)

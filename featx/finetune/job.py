"""``FinetuneJob`` and ``run_finetune``: one fine-tuning run, or one segmentation baseline from scratch.

Built from `featx finetune` flags or in Python; every option is checked (through
:class:`featx.finetune.config.FinetuneConfig`) before the dataset is indexed or a model is built.
This module imports nothing heavy at import time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featx.jobs.fields import JobError, coerce_fields, option

LORA_TARGETS = ("qkv", "fc1", "fc2")  # PROTOCOL.md: LoRA on qkv, fc1, fc2


@dataclass(frozen=True)
class FinetuneJob:
    """One `featx finetune` run: the backbone in the training loop, or a baseline trained from scratch."""

    dataset: str = option(help="Dataset adapter name (`featx datasets`), e.g. nih_chestxray14 or csv.")
    root: Path = option(help="The dataset as downloaded (a CSV file for --dataset csv).")
    run_dir: Path = option(help="Folder for checkpoints; a killed run resumes from it.")
    out: Path | None = option(None, "Results file (JSON lines); records are appended.")
    method: str = option("lora", "full | lora | bitfit | linear (linear: frozen backbone, the control).")
    decoder: str | None = option(None, "Segmentation datasets: seg_unet (default; last 5 blocks' patch tokens) or "
                                       "seg_linear (last block).")
    seg_loss: str = option("dice", "Segmentation loss: dice (soft Dice, background excluded) or dice_ce "
                                   "(+ cross-entropy).")
    backbone: str | None = option(None, "Backbone name (`featx backbones`); not with --from-scratch.")
    model: str | None = option(None, "With --from-scratch: unet or transunet (MONAI UNet / UNETR).")
    from_scratch: bool = option(False, "Train a segmentation baseline from random weights.", flag="--from-scratch")
    size: int = option(224, "Square input resolution in pixels.")
    weights: Path | None = option(None, "Local backbone weights file (safetensors, pth, bin).")
    random_init: bool = option(False, "Random backbone weights (recorded).", flag="--random-init")
    model_overrides: dict[str, Any] = option({}, "Architecture key=value (repeatable).", flag="--model-override",
                                             form="pairs")
    device: str = option("cpu", "cpu or cuda (under torchrun: cuda, one GPU per process).")
    epochs: int = option(10, "Epochs at most (early stopping on validation may end sooner).")
    batch_size: int = option(32, "Images per optimiser step (over all processes).")
    head_lr: float = option(1e-3, "AdamW learning rate of the head (scratch models: of every tensor).")
    backbone_lr: float | None = option(None, "Backbone learning rate (default full 1e-5, lora/bitfit 1e-4).")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    patience: int = option(3, "Stop after this many epochs without a better validation score.")
    seed: int = option(0, "Seed of the head, adapters, batch order, dropout and bootstrap.")
    lora_r: int = option(48, "LoRA rank.")
    lora_alpha: int = option(16, "LoRA alpha.")
    lora_dropout: float = option(0.1, "LoRA dropout.")
    lora_targets: tuple[str, ...] = option(LORA_TARGETS, "Module name LoRA adapts (repeatable; default qkv, fc1, "
                                                         "fc2).", flag="--lora-target", form="repeat")
    checkpoint_every: int = option(0, "Also checkpoint every N steps (0: at epoch ends only).")
    grad_checkpointing: bool | None = option(None, "Recompute activations in the backward pass (default: on with "
                                                   "CUDA).", flag="--grad-checkpointing/--no-grad-checkpointing")
    bootstrap: int = option(1000, "Patient bootstrap resamples for the 95% interval.")
    workers: int = option(0, "DataLoader processes decoding the images once.")
    cache: Path | None = option(None, "Cache root: read the dataset's pixel store there (built by `featx extract`) "
                                      "when it matches; else decode.")
    fingerprint: str = option("stat", "With --cache: how unchanged raw files are recognised, as the pixel store "
                                      "was built (stat or content).")
    progress: bool = option(True, "Show the progress bar (steps/s, validation score).",
                            flag="--progress/--no-progress")
    options: dict[str, Any] = option({}, "Adapter option key=value (repeatable).", flag="--option", form="pairs")
    name: str | None = option(None, "csv: dataset name (default the CSV's stem).")
    modality: str | None = option(None, "csv: xray, ct, mri or other (sets intensity defaults).")

    def __post_init__(self) -> None:
        coerce_fields(self)
        if self.from_scratch and (self.backbone or self.model is None):
            raise JobError("--from-scratch trains --model unet|transunet; it takes no --backbone")
        if not self.from_scratch and (self.model or self.backbone is None):
            raise JobError("give --backbone NAME (and --method), or --from-scratch --model unet|transunet")
        if self.fingerprint not in ("stat", "content"):
            raise JobError(f"--fingerprint: expected one of stat, content, got {self.fingerprint!r}")

    def config(self) -> Any:
        """The run's :class:`FinetuneConfig` (hyper-parameters; checked, and recorded in every record)."""
        from featx.finetune.config import FinetuneConfig

        grad = self.device.startswith("cuda") if self.grad_checkpointing is None else self.grad_checkpointing
        return FinetuneConfig(
            method="full" if self.from_scratch else self.method, epochs=self.epochs, batch_size=self.batch_size,
            head_lr=self.head_lr, backbone_lr=self.backbone_lr, weight_decay=self.weight_decay,
            patience=self.patience, seed=self.seed, lora_r=self.lora_r, lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout, lora_targets=self.lora_targets, checkpoint_every=self.checkpoint_every,
            grad_checkpointing=grad, decoder=self.decoder, seg_loss=self.seg_loss,
        )


def run_finetune(job: FinetuneJob, echo: Callable[[str], None] = print) -> Any:
    """Index the job's dataset and run it: fine-tune the backbone, or train the baseline from scratch.

    Returns the :class:`featx.finetune.runner.FinetuneRun` (its records are also appended to ``job.out``).
    """
    from featx.datasets.registry import index_from_options
    from featx.finetune.runner import finetune_backbone, train_scratch

    if job.out is None:
        raise JobError("give --out RESULTS.jsonl: the run's records are appended there")
    job.config()  # every hyper-parameter checked before the dataset is read
    if job.backbone is not None:
        from featx.backbones.registry import check_backbone_name

        check_backbone_name(job.backbone)
    index = index_from_options(job.dataset, job.root, job.options, job.name, job.modality)
    for problem in index.problems:
        echo(f"quarantined: {problem}")
    if job.from_scratch:
        return train_scratch(index, job)
    if job.random_init and os.environ.get("RANK", "0") == "0":
        echo(f"{job.backbone}: RANDOM weights (--random-init); results will say so")
    return finetune_backbone(index, job)

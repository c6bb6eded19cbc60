"""`featx finetune`: the backbone in the training loop (full, LoRA, BitFit, linear control) under a
classification head or a segmentation decoder, or a segmentation baseline trained from scratch
(U-Net, TransUNet-style UNETR)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from featx.cli.options import index_from_options, parse_key_values


def finetune_command(
    dataset: str = typer.Option(..., help="Dataset adapter name (`featx datasets`), e.g. nih_chestxray14 or csv."),
    root: Path = typer.Option(..., help="The dataset as downloaded (a CSV file for --dataset csv)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Folder for checkpoints; a killed run resumes from it."),
    out: Path = typer.Option(..., help="Results file (JSON lines); records are appended."),
    method: str = typer.Option("lora", help="full | lora | bitfit | linear (linear: frozen backbone, the control)."),
    decoder: Optional[str] = typer.Option(None, help="Segmentation datasets: seg_unet (default; last 5 blocks' patch tokens) or seg_linear (last block)."),
    seg_loss: str = typer.Option("dice", "--seg-loss", help="Segmentation loss: dice (soft Dice, background excluded) or dice_ce (+ cross-entropy)."),
    backbone: Optional[str] = typer.Option(None, help="Backbone name (`featx backbones`); not with --from-scratch."),
    model: Optional[str] = typer.Option(None, help="With --from-scratch: unet or transunet (MONAI UNet / UNETR)."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Train a segmentation baseline from random weights."),
    size: int = typer.Option(224, help="Square input resolution in pixels."),
    weights: Optional[Path] = typer.Option(None, help="Local backbone weights file (safetensors, pth, bin)."),
    random_init: bool = typer.Option(False, "--random-init", help="Random backbone weights (recorded)."),
    model_override: Optional[list[str]] = typer.Option(None, "--model-override", help="Architecture key=value (repeatable)."),
    device: str = typer.Option("cpu", help="cpu or cuda (under torchrun: cuda, one GPU per process)."),
    epochs: int = typer.Option(10, help="Epochs at most (early stopping on validation may end sooner)."),
    batch_size: int = typer.Option(32, help="Images per optimiser step (over all processes)."),
    head_lr: float = typer.Option(1e-3, help="AdamW learning rate of the head (scratch models: of every tensor)."),
    backbone_lr: Optional[float] = typer.Option(None, help="Backbone learning rate (default full 1e-5, lora/bitfit 1e-4)."),
    weight_decay: float = typer.Option(0.0, help="AdamW weight decay."),
    patience: int = typer.Option(3, help="Stop after this many epochs without a better validation score."),
    seed: int = typer.Option(0, help="Seed of the head, adapters, batch order, dropout and bootstrap."),
    lora_r: int = typer.Option(48, help="LoRA rank."),
    lora_alpha: int = typer.Option(16, help="LoRA alpha."),
    lora_dropout: float = typer.Option(0.1, help="LoRA dropout."),
    lora_target: Optional[list[str]] = typer.Option(None, "--lora-target", help="Module name LoRA adapts (repeatable; default qkv, fc1, fc2)."),
    checkpoint_every: int = typer.Option(0, help="Also checkpoint every N steps (0: at epoch ends only)."),
    grad_checkpointing: Optional[bool] = typer.Option(None, "--grad-checkpointing/--no-grad-checkpointing", help="Recompute activations in the backward pass (default: on with CUDA)."),
    bootstrap: int = typer.Option(1000, help="Patient bootstrap resamples for the 95% interval."),
    workers: int = typer.Option(0, help="DataLoader processes decoding the images once."),
    cache: Optional[Path] = typer.Option(None, help="Cache root: read the dataset's pixel store there (built by `featx extract`) when it matches; else decode."),
    fingerprint: str = typer.Option("stat", help="With --cache: how unchanged raw files are recognised, as the pixel store was built (stat or content)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar (steps/s, validation score)."),
    option: Optional[list[str]] = typer.Option(None, "--option", help="Adapter option key=value (repeatable)."),
    name: Optional[str] = typer.Option(None, help="csv: dataset name (default the CSV's stem)."),
    modality: Optional[str] = typer.Option(None, help="csv: xray, ct, mri or other (sets intensity defaults)."),
) -> None:
    """Fine-tune a backbone with a classification head or a segmentation decoder, or train a segmentation
    baseline from scratch."""
    from featx.finetune.config import LORA_TARGETS, FinetuneConfig, FinetuneError
    from featx.finetune.runner import run_finetune, run_scratch
    from featx.datasets.stamps import FINGERPRINTS

    if from_scratch and (backbone or model is None):
        raise FinetuneError("--from-scratch trains --model unet|transunet; it takes no --backbone")
    if not from_scratch and (model or backbone is None):
        raise FinetuneError("give --backbone NAME (and --method), or --from-scratch --model unet|transunet")
    config = FinetuneConfig(
        method="full" if from_scratch else method, epochs=epochs, batch_size=batch_size, head_lr=head_lr,
        backbone_lr=backbone_lr, weight_decay=weight_decay, patience=patience, seed=seed, lora_r=lora_r,
        lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=tuple(lora_target or LORA_TARGETS),
        checkpoint_every=checkpoint_every,
        grad_checkpointing=device.startswith("cuda") if grad_checkpointing is None else grad_checkpointing,
        decoder=decoder, seg_loss=seg_loss,
    )
    if fingerprint not in FINGERPRINTS:
        raise FinetuneError(f"--fingerprint: expected one of {', '.join(FINGERPRINTS)}, got {fingerprint!r}")
    index = index_from_options(dataset, root, option, name, modality)
    overrides = parse_key_values(model_override, "--model-override") or None
    common = dict(size=size, config=config, run_dir=run_dir, out=out, model_overrides=overrides, device=device,
                  n_boot=bootstrap, workers=workers, progress=progress, cache=cache, fingerprint_mode=fingerprint)
    if from_scratch:
        run = run_scratch(index, model_name=str(model), **common)
    else:
        if random_init:
            typer.secho(f"{backbone}: RANDOM weights (--random-init); results will say so", fg=typer.colors.YELLOW, err=True)
        run = run_finetune(index, backbone=str(backbone), weights=weights, random_init=random_init, **common)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports (and writes records)
        return
    for failure in run.failures[:20]:
        typer.secho(f"failed row: {failure}", fg=typer.colors.RED, err=True)
    if run.source.get("pixel_source") == "pixel_store":
        typer.echo(f"pixels: read from the pixel store {run.source['pixel_store']}")
    else:
        typer.echo(f"pixels: decoded from the raw files ({run.source.get('pixel_note')})")
    headline = next(r for r in run.records if r["metric"] in ("auroc_macro", "dice_jaccard_mean"))

    def number(key: str) -> str:
        return "n/a" if headline[key] is None else f"{headline[key]:.4f}"

    typer.echo(
        f"{headline['setting']}: test {headline['metric']} {number('value')} "
        f"[{number('ci_low')}, {number('ci_high')}]; best val {run.result.best_score:.4f} at epoch "
        f"{run.result.best_epoch + 1}; trainable {run.trainable_params:,} of {run.total_params:,} parameters"
    )
    typer.echo(f"{len(run.records)} records appended to {out}")

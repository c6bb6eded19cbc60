"""One fine-tuning (or scratch-baseline) run: checks, data, model, training, one test scoring, records.

Everything a user can get wrong (task, splits, LoRA targets, a checkpoint from another
configuration, a missing GPU) is checked before any image is decoded or any step is taken.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featx.backbones import load_backbone
from featx.datasets.index import SampleIndex
from featx.evaluation.metrics import selection_score
from featx.evaluation.records import append_jsonl, check_label_names, finalise, make_base, read_jsonl, scored_records
from featx.finetune.config import FinetuneConfig, FinetuneError, fingerprint
from featx.finetune.data import Pixels, load_pixels, require_splits, sealed_units
from featx.finetune.methods import Classifier, apply_method, load_trainable_state, parameter_counts
from featx.finetune.scratch import build_scratch
from featx.finetune.segmetrics import macro_dice_jaccard, pixel_counts, score_segmentation, seg_records
from featx.finetune.train import TrainResult, train, world
from featx.pipeline.extract import resolve_device
from featx.pipeline.preprocess import PreprocessConfig

RUN_FILE = "run.json"
CLASSIFICATION = ("multilabel", "multiclass", "binary")


@dataclass
class FinetuneRun:
    """What a run produced: its records (also appended to ``out``), training summary, counts."""

    records: list[dict[str, Any]]
    result: TrainResult
    trainable_params: int
    total_params: int
    fingerprint: str
    failures: list[str] = field(default_factory=list)


def _device(device: str) -> torch.device:
    local_rank = os.environ.get("LOCAL_RANK")
    if device == "cuda" and local_rank is not None:  # under torchrun: one GPU per process
        device = f"cuda:{local_rank}"
    try:
        return resolve_device(device)
    except RuntimeError as error:
        raise FinetuneError(f"{error}; use --device cpu, or run where a GPU is visible") from None


def _claim_run_dir(run_dir: Path, fp: str, description: dict[str, Any]) -> None:
    """Record this run's fingerprint in ``run_dir``; refuse a folder holding another configuration."""
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if path.exists():
        other = json.loads(path.read_text())
        if other.get("fingerprint") != fp:
            raise FinetuneError(
                f"--run-dir {run_dir} holds a run of another configuration ({other.get('fingerprint')} != {fp}: "
                f"{json.dumps(other.get('description', {}), sort_keys=True)[:300]}); use another --run-dir, or delete it"
            )
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{RUN_FILE}.{os.getpid()}.tmp")  # atomic: ranks under torchrun may race
        tmp.write_text(json.dumps({"fingerprint": fp, "description": description}, indent=1, default=str))
        os.replace(tmp, path)
    except OSError as error:
        raise FinetuneError(f"--run-dir {run_dir}: cannot write there ({error.strerror}); give a writable folder") from None


def _fingerprint_parts(index: SampleIndex, preprocess: PreprocessConfig, config: FinetuneConfig, model: dict[str, Any]) -> dict[str, Any]:
    table = index.table
    rows = hashlib.sha256("\n".join(f"{a}\t{b}\t{c}" for a, b, c in zip(table["sample_id"], table["split"], table["source"])).encode())
    rows.update(np.nan_to_num(index.labels, nan=-1).astype(np.float32).tobytes())
    hyper = replace(config, checkpoint_every=0, grad_checkpointing=False).hyperparameters()
    return {
        "dataset": index.dataset,
        "samples": rows.hexdigest()[:16],
        "preprocess": preprocess.to_dict(),
        "config": hyper,
        "model": model,
    }


def _batched(model: nn.Module, images: torch.Tensor, rows: np.ndarray, device: torch.device, batch: int) -> list[torch.Tensor]:
    outs = []
    for start in range(0, len(rows), batch):
        x = images[torch.as_tensor(rows[start : start + batch])].to(device)
        outs.append(model(x).float().cpu())
    return outs


def _check_out(out: str | Path | None, dataset: str, label_names: list[str]) -> None:
    """Before training: the results file must be writable and hold no other label names for ``dataset``."""
    if out is None:
        return
    out = Path(out)
    folder = next((p for p in (out.parent, *out.parent.parents) if p.exists()), Path("."))
    if not os.access(out if out.exists() else folder, os.W_OK):
        raise FinetuneError(f"--out {out}: cannot write there; give a writable results file")
    check_label_names(read_jsonl(out), dataset, label_names, out)


def _write(records: list[dict[str, Any]], out: str | Path | None) -> list[dict[str, Any]]:
    records = finalise(records)
    if out is not None and world()[0] == 0:
        append_jsonl(out, records)
    return records


def _run_extra(config: FinetuneConfig, result: TrainResult, trainable: int, total: int, fp: str, run_dir: Path,
               device: torch.device, pixels: Pixels, preprocess: PreprocessConfig) -> dict[str, Any]:
    return {
        "method": config.method,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_fraction": trainable / total if total else math.nan,
        "selected_on": "val",
        "best_epoch": result.best_epoch,
        "val_score": result.best_score,
        "val_history": result.history,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "steps": result.steps,
        "steps_per_second": result.steps_per_second,
        "resumed_from_step": result.resumed_from,
        "run_dir": str(run_dir),
        "run_fingerprint": fp,
        "device": str(device),
        "world_size": world()[1],
        "preprocess": preprocess.to_dict(),
        "n_val": int(pixels.rows("val").size),
        "n_failed": len(pixels.failures),
        "level": "sample",
    }


def run_finetune(
    index: SampleIndex,
    *,
    backbone: str,
    size: int,
    config: FinetuneConfig,
    run_dir: str | Path,
    out: str | Path | None = None,
    weights: str | Path | None = None,
    random_init: bool = False,
    model_overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    n_boot: int = 1000,
    workers: int = 0,
    progress: bool = True,
    preprocess: PreprocessConfig | None = None,
) -> FinetuneRun:
    """Fine-tune ``backbone`` on a classification ``index`` by ``config.method``; score test once."""
    run_dir = Path(run_dir)
    if index.task not in CLASSIFICATION:
        raise FinetuneError(
            f"{index.dataset} is a {index.task} dataset; --method {config.method} trains a classifier. "
            "For segmentation baselines use --model unet|transunet --from-scratch"
        )
    require_splits(index.table["split"], index.dataset, "indexed samples")
    _check_out(out, index.dataset, list(index.label_names))
    dev = _device(device)
    preprocess = preprocess or PreprocessConfig.for_modality(index.modality, size)
    loaded = load_backbone(backbone, img_size=size, weights=weights, random_init=random_init,
                           n_last=1, model_overrides=model_overrides, seed=config.seed)
    n_out = 1 if index.task == "binary" else len(index.label_names)
    torch.manual_seed(config.seed)
    model = Classifier(loaded, n_out)
    groups = apply_method(model, config)
    trainable, total = parameter_counts(model)
    model_desc = {"backbone": backbone, "weights_hash": loaded.weights_hash, "backbone_config": loaded.config}
    fp = fingerprint(_fingerprint_parts(index, preprocess, config, model_desc))
    _claim_run_dir(run_dir, fp, {"backbone": backbone, "dataset": index.dataset, **config.hyperparameters()})

    pixels = load_pixels(index, preprocess, workers=workers)
    require_splits(pixels.split, index.dataset, "readable samples")
    units = sealed_units(pixels, index)
    splits = units.splits
    model.to(dev)
    train_view, val_view = splits.train, splits.val
    labels = np.full_like(pixels.labels, np.nan)  # per pixel row; test rows stay unknown
    for view in (train_view, val_view):
        for unit, unit_labels in zip(view.rows, view.labels):
            labels[units.members[unit]] = unit_labels
    target = torch.from_numpy(np.nan_to_num(labels)).to(dev)
    known = torch.from_numpy(~np.isnan(labels)).to(dev).float()
    task, eval_batch = index.task, config.batch_size * 2

    def loss_fn(net: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        logits = net(pixels.images[rows].to(dev, non_blocking=True)).float()
        rows = rows.to(dev)
        if task == "multiclass":
            return F.cross_entropy(logits, target[rows].argmax(1))
        if task == "binary":
            return F.binary_cross_entropy_with_logits(logits[:, 0], target[rows, 1])
        weight = known[rows]
        losses = F.binary_cross_entropy_with_logits(logits, target[rows], reduction="none") * weight
        return losses.sum() / weight.sum().clamp_min(1.0)

    def predict(unit_rows: np.ndarray) -> np.ndarray:
        """Scores of units: a volume's slice logits are averaged (the probes average its features)."""
        logits = torch.cat(_batched(model, pixels.images, units.pixel_rows(unit_rows), dev, eval_batch))
        sizes = [len(units.members[u]) for u in unit_rows]
        logits = torch.stack([part.mean(0) for part in torch.split(logits, sizes)])
        if task == "multiclass":
            return torch.softmax(logits, 1).numpy()
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], 1).numpy() if task == "binary" else p.numpy()

    with splits.selecting():
        result = train(
            model, groups, units.pixel_rows(train_view.rows), loss_fn,
            lambda net: selection_score(val_view.labels, predict(val_view.rows)),
            config, run_dir=run_dir, fingerprint=fp, device=dev, progress=progress,
        )
    load_trainable_state(model, result.best_state)
    model.eval()
    with torch.no_grad():
        scored = splits.score_test_once((config.method, fp), lambda inputs: predict(inputs.rows), n_boot=n_boot, seed=config.seed)
    provenance = {
        "dataset": index.dataset, "backbone": backbone, "store_key": None, "store_path": None,
        "weights_hash": loaded.weights_hash, "random_init": loaded.random_init, "img_size": size,
    }
    base = make_base(
        provenance=provenance, setting=f"finetune-{config.method}", split="test",
        hyperparameters=config.hyperparameters(), seed=config.seed,
        n_train=int(train_view.n), n_test=int(splits.n_test), label_names=list(index.label_names),
        extra={**_run_extra(config, result, trainable, total, fp, run_dir, dev, pixels, preprocess),
               "level": units.level, "n_val": int(val_view.n)},
    )
    records = _write(scored_records(scored, base), out)
    return FinetuneRun(records, result, trainable, total, fp, pixels.failures)


def run_scratch(
    index: SampleIndex,
    *,
    model_name: str,
    size: int,
    config: FinetuneConfig,
    run_dir: str | Path,
    out: str | Path | None = None,
    model_overrides: dict[str, Any] | None = None,
    device: str = "cpu",
    n_boot: int = 1000,
    workers: int = 0,
    progress: bool = True,
    preprocess: PreprocessConfig | None = None,
) -> FinetuneRun:
    """Train a segmentation baseline from scratch (Dice + CE); choose on val; score test once."""
    from monai.losses import DiceCELoss

    run_dir = Path(run_dir)
    if index.task != "segmentation":
        raise FinetuneError(f"{index.dataset} is a {index.task} dataset; --from-scratch trains segmentation baselines")
    require_splits(index.table["split"], index.dataset, "indexed samples")
    _check_out(out, index.dataset, list(index.label_names))
    dev = _device(device)
    preprocess = preprocess or PreprocessConfig.for_modality(index.modality, size)
    n_classes = len(index.label_names)
    torch.manual_seed(config.seed)
    model, settings = build_scratch(model_name, n_classes, size, model_overrides)
    config = replace(config, method="full")
    groups = [{"params": list(model.parameters()), "lr": config.head_lr, "name": "all"}]
    trainable, total = parameter_counts(model)
    fp = fingerprint(_fingerprint_parts(index, preprocess, config, {"scratch": model_name, **settings}))
    _claim_run_dir(run_dir, fp, {"model": model_name, "dataset": index.dataset, **settings})

    pixels = load_pixels(index, preprocess, workers=workers)
    require_splits(pixels.split, index.dataset, "readable samples")
    model.to(dev)
    loss_of = DiceCELoss(to_onehot_y=True, softmax=True)
    eval_batch = config.batch_size * 2

    def loss_fn(net: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        logits = net(pixels.images[rows].to(dev, non_blocking=True)).float()
        return loss_of(logits, pixels.masks[rows].to(dev).unsqueeze(1).long())

    def counts(rows: np.ndarray) -> np.ndarray:
        parts = []
        for start, logits in zip(range(0, len(rows), eval_batch), _batched(model, pixels.images, rows, dev, eval_batch)):
            parts.append(pixel_counts(logits.argmax(1), pixels.masks[torch.as_tensor(rows[start : start + eval_batch])], n_classes))
        return np.concatenate(parts)

    train_rows, val_rows, test_rows = pixels.rows("train"), pixels.rows("val"), pixels.rows("test")
    result = train(model, groups, train_rows, loss_fn, lambda net: macro_dice_jaccard(counts(val_rows)),
                   config, run_dir=run_dir, fingerprint=fp, device=dev, progress=progress)
    load_trainable_state(model, result.best_state)
    model.eval()
    with torch.no_grad():  # the one look at test, after the model was chosen on validation
        scored = score_segmentation(counts(test_rows), pixels.patients[test_rows], list(index.label_names), n_boot=n_boot, seed=config.seed)
    provenance = {"dataset": index.dataset, "backbone": model_name, "store_key": None, "store_path": None,
                  "weights_hash": "random-init", "random_init": True, "img_size": size}
    hyper = {**config.hyperparameters(), "loss": "monai.DiceCELoss", "model": settings}
    hyper.pop("method"), hyper.pop("backbone_lr")
    base = make_base(
        provenance=provenance, setting=f"scratch-{model_name}", split="test", hyperparameters=hyper, seed=config.seed,
        n_train=int(train_rows.size), n_test=int(test_rows.size), label_names=list(index.label_names),
        extra={**_run_extra(config, result, trainable, total, fp, run_dir, dev, pixels, preprocess),
               "method": "scratch", "score_pixels": "all pixels of the split (slices pooled), background excluded"},
    )
    records = _write(seg_records(scored, base), out)
    return FinetuneRun(records, result, trainable, total, fp, pixels.failures)

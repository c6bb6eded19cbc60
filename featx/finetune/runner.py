"""One fine-tuning (or scratch-baseline) run: checks, data, model, training, one test scoring, records.

Classification fine-tunes a linear head on the last block's CLS; segmentation the probes' decoder
on the patch tokens of the last blocks (:mod:`featx.finetune.segmenter`); the scratch baselines
train a MONAI network. Everything a user can get wrong (task, decoder, backbone depth, splits,
LoRA targets, a checkpoint from another configuration, a missing GPU) is checked before any image
is decoded or any step is taken.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featx.backbones import load_backbone
from featx.backbones.device import resolve_device
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig
from featx.decoders.loss import segmentation_loss
from featx.decoders.models import decoder_blocks
from featx.evaluation.analyses import classification_extras
from featx.evaluation.metrics import selection_score
from featx.evaluation.records import (
    append_jsonl,
    check_label_names,
    finalise,
    make_base,
    read_jsonl,
    scored_records,
    seg_scored_records,
)
from featx.finetune.config import FinetuneConfig, FinetuneError, fingerprint
from featx.finetune.data import Pixels, load_pixels, require_splits, sealed_rows, sealed_units
from featx.finetune.job import FinetuneJob
from featx.finetune.methods import Classifier, apply_method, load_trainable_state, parameter_counts
from featx.finetune.scratch import build_scratch
from featx.finetune.segment import check_volumes, fit_segmentation
from featx.finetune.segmenter import Segmenter, check_decoder_depth
from featx.finetune.train import TrainResult, train, world
from featx.jobs.outputs import check_results_file

RUN_FILE = "run.json"


@dataclass
class FinetuneRun:
    """What a run produced: its records (also appended to ``out``), training summary, counts."""

    records: list[dict[str, Any]]
    result: TrainResult
    trainable_params: int
    total_params: int
    fingerprint: str
    failures: list[str] = field(default_factory=list)
    source: dict[str, str | None] = field(default_factory=dict)  # where the pixels came from (Pixels.source)


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


def _check_out(out: str | Path | None, dataset: str, label_names: list[str]) -> None:
    """Before training: the results file must be writable and hold no other label names for ``dataset``."""
    if out is None:
        return
    check_results_file(out, option="--out")
    check_label_names(read_jsonl(out), dataset, label_names, out)


def _batched(model: nn.Module, images: torch.Tensor, rows: np.ndarray, device: torch.device, batch: int) -> list[torch.Tensor]:
    outs = []
    for start in range(0, len(rows), batch):
        x = images[torch.as_tensor(rows[start : start + batch])].to(device)
        outs.append(model(x).float().cpu())
    return outs


@dataclass
class _Context:
    """What every part of one run shares once the model is built and the pixels are read."""

    index: SampleIndex
    config: FinetuneConfig
    pixels: Pixels
    preprocess: PreprocessConfig
    provenance: dict[str, Any]
    trainable: int
    total: int
    fingerprint: str
    run_dir: Path
    device: torch.device
    n_boot: int
    progress: bool
    out: str | Path | None

    def train_args(self) -> dict[str, Any]:
        return {"run_dir": self.run_dir, "fingerprint": self.fingerprint, "device": self.device, "progress": self.progress}

    def finish(self, records: list[dict[str, Any]], result: TrainResult) -> FinetuneRun:
        """Clean and append the records; the run's summary."""
        records = finalise(records)
        if self.out is not None and world()[0] == 0:
            append_jsonl(self.out, records)
        return FinetuneRun(records, result, self.trainable, self.total, self.fingerprint, self.pixels.failures,
                           self.pixels.source)

    def base(self, setting: str, hyperparameters: dict[str, Any], result: TrainResult, n_train: int, n_test: int,
             extra: dict[str, Any]) -> dict[str, Any]:
        """The fields every test record of this run carries."""
        result_fields = {
            "method": self.config.method,
            "trainable_params": self.trainable,
            "total_params": self.total,
            "trainable_fraction": self.trainable / self.total if self.total else math.nan,
            "selected_on": "val",
            "best_epoch": result.best_epoch,
            "val_score": result.best_score,
            "val_history": result.history,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "steps": result.steps,
            "steps_per_second": result.steps_per_second,
            "resumed_from_step": result.resumed_from,
            "run_dir": str(self.run_dir),
            "run_fingerprint": self.fingerprint,
            "device": str(self.device),
            "world_size": world()[1],
            "preprocess": self.preprocess.to_dict(),
            "n_val": int(self.pixels.rows("val").size),
            "n_failed": len(self.pixels.failures),
            **self.pixels.source,
        }
        return make_base(provenance=self.provenance, setting=setting, split="test", hyperparameters=hyperparameters,
                         seed=self.config.seed, n_train=n_train, n_test=n_test, label_names=list(self.index.label_names),
                         extra={**result_fields, **extra})


def _start(index: SampleIndex, out: str | Path | None, device: str) -> torch.device:
    """The checks every run makes before building anything: splits, results file, device."""
    require_splits(index.table["split"], index.dataset, "indexed samples")
    _check_out(out, index.dataset, list(index.label_names))
    return _device(device)


def _read_pixels(index: SampleIndex, preprocess: PreprocessConfig, workers: int, cache: str | Path | None,
                 fingerprint_mode: str) -> Pixels:
    """The run's pixels, with readable train, val and test rows (and whole volumes for segmentation)."""
    pixels = load_pixels(index, preprocess, workers=workers, cache=cache, fingerprint=fingerprint_mode)
    require_splits(pixels.split, index.dataset, "readable samples")
    if index.task == "segmentation":
        check_volumes(pixels, index.dataset)
    return pixels


def finetune_backbone(index: SampleIndex, job: FinetuneJob) -> FinetuneRun:
    """Fine-tune ``job.backbone`` on ``index`` by ``job.method``; choose on validation; score test once.

    Classification: a linear head on the last block's CLS. Segmentation: ``job.decoder``
    (default ``seg_unet``) on the patch tokens of the last blocks. Pixels come from the
    matching pixel store under ``job.cache`` where there is one (stamps by ``job.fingerprint``).
    """
    config, backbone, size, overrides = job.config(), str(job.backbone), job.size, job.model_overrides or None
    segmentation = index.task == "segmentation"
    if config.decoder is not None and not segmentation:
        raise FinetuneError(
            f"--decoder {config.decoder}: {index.dataset} is a {index.task} dataset and decoders segment; leave "
            "--decoder out (classification fine-tunes a linear head on the last block's class token)"
        )
    if segmentation and config.decoder is None:
        config = replace(config, decoder="seg_unet")
    dev = _start(index, job.out, job.device)
    if segmentation:
        check_decoder_depth(backbone, size, str(config.decoder), overrides)
    preprocess = PreprocessConfig.for_modality(index.modality, size)
    loaded = load_backbone(backbone, img_size=size, weights=job.weights, random_init=job.random_init,
                           n_last=decoder_blocks(str(config.decoder)) if segmentation else 1, patch_tokens=segmentation,
                           model_overrides=overrides, seed=config.seed)
    torch.manual_seed(config.seed)
    if segmentation:
        model = Segmenter(loaded, str(config.decoder), len(index.label_names))
    else:
        model = Classifier(loaded, 1 if index.task == "binary" else len(index.label_names))
    groups = apply_method(model, config)
    trainable, total = parameter_counts(model)
    model_desc = {"backbone": backbone, "weights_hash": loaded.weights_hash, "backbone_config": loaded.config}
    fp = fingerprint(_fingerprint_parts(index, preprocess, config, model_desc))
    _claim_run_dir(job.run_dir, fp, {"backbone": backbone, "dataset": index.dataset, **config.hyperparameters()})

    pixels = _read_pixels(index, preprocess, job.workers, job.cache, job.fingerprint)
    model.to(dev)
    provenance = {
        "dataset": index.dataset, "backbone": backbone, "store_key": None, "store_path": None,
        "weights_hash": loaded.weights_hash, "random_init": loaded.random_init, "img_size": size,
    }
    run = _Context(index, config, pixels, preprocess, provenance, trainable, total, fp, job.run_dir, dev,
                   job.bootstrap, job.progress, job.out)
    if not segmentation:
        return _classify(model, groups, run)
    n_classes = len(index.label_names)
    return _segment(model, groups, run, lambda logits, masks: segmentation_loss(logits, masks, n_classes, config.seg_loss),
                    f"finetune-{config.method}-{config.decoder}", config.hyperparameters(),
                    {"decoder": config.decoder, "layers": model.layers})


def _classify(model: Classifier, groups: list[dict], run: _Context) -> FinetuneRun:
    """Train the classifier on train units, choose on validation AUROC, score the test units once."""
    pixels, config, dev = run.pixels, run.config, run.device
    units = sealed_units(pixels, run.index)
    splits = units.splits
    train_view, val_view = splits.train, splits.val
    labels = np.full_like(pixels.labels, np.nan)  # per pixel row; test rows stay unknown
    for view in (train_view, val_view):
        for unit, unit_labels in zip(view.rows, view.labels):
            labels[units.members[unit]] = unit_labels
    target = torch.from_numpy(np.nan_to_num(labels)).to(dev)
    known = torch.from_numpy(~np.isnan(labels)).to(dev).float()
    task, eval_batch = run.index.task, config.batch_size * 2

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
        result = train(model, groups, units.pixel_rows(train_view.rows), loss_fn,
                       lambda net: selection_score(val_view.labels, predict(val_view.rows)), config, **run.train_args())
    load_trainable_state(model, result.best_state)
    model.eval()
    setting, hyper = f"finetune-{config.method}", config.hyperparameters()
    kept: dict[str, np.ndarray] = {}

    def predict_test(inputs: Any) -> np.ndarray:
        kept["scores"] = predict(inputs.rows)
        return kept["scores"]

    with torch.no_grad():
        scored = splits.score_test_once(setting, predict_test, setting=setting, hyperparameters=hyper,
                                        n_boot=run.n_boot, seed=config.seed)
    base = run.base(setting, hyper, result, int(train_view.n), int(splits.n_test),
                    {"level": units.level, "n_val": int(val_view.n), **splits.test_use(setting).as_record()})
    records = classification_extras(run.out, scored_records(scored, base), kept["scores"], units.data,
                                    n_boot=run.n_boot)  # calibration of the head's probabilities, subgroups
    return run.finish(records, result)


def _segment(model: nn.Module, groups: list[dict], run: _Context,
             loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], setting: str,
             hyperparameters: dict[str, Any], extra: dict[str, Any]) -> FinetuneRun:
    """Train a segmentation model on train rows, choose on validation Dice, score the test once."""
    class_names = list(run.index.label_names)
    fit = fit_segmentation(model, groups, loss_of, run.pixels, sealed_rows(run.pixels, run.index), class_names,
                           run.config, setting=setting, hyperparameters=hyperparameters, n_boot=run.n_boot,
                           **run.train_args())
    extra = {"level": run.pixels.unit_level, "n_test_units": fit.scored.n_units, "n_classes": len(class_names),
             **fit.test_use, **extra}
    if fit.scored.empty_classes:
        extra["empty_classes"] = list(fit.scored.empty_classes)
    base = run.base(setting, hyperparameters, fit.result, fit.n_train, fit.n_test, extra)
    return run.finish(seg_scored_records(fit.scored, base), fit.result)


def train_scratch(index: SampleIndex, job: FinetuneJob) -> FinetuneRun:
    """Train the segmentation baseline ``job.model`` from scratch (Dice + CE); choose on val Dice; score test once."""
    from monai.losses import DiceCELoss

    config, model_name, size = job.config(), str(job.model), job.size
    if index.task != "segmentation":
        raise FinetuneError(f"{index.dataset} is a {index.task} dataset; --from-scratch trains segmentation baselines")
    if config.decoder is not None:
        raise FinetuneError(f"--decoder {config.decoder} sits on a backbone and --from-scratch --model {model_name} "
                            "brings its own decoder; leave --decoder out")
    dev = _start(index, job.out, job.device)
    preprocess = PreprocessConfig.for_modality(index.modality, size)
    torch.manual_seed(config.seed)
    model, settings = build_scratch(model_name, len(index.label_names), size, job.model_overrides or None)
    config = replace(config, method="full")
    groups = [{"params": list(model.parameters()), "lr": config.head_lr, "name": "all"}]
    trainable, total = parameter_counts(model)
    fp = fingerprint(_fingerprint_parts(index, preprocess, config, {"scratch": model_name, **settings}))
    _claim_run_dir(job.run_dir, fp, {"model": model_name, "dataset": index.dataset, **settings})

    pixels = _read_pixels(index, preprocess, job.workers, job.cache, job.fingerprint)
    model.to(dev)
    provenance = {"dataset": index.dataset, "backbone": model_name, "store_key": None, "store_path": None,
                  "weights_hash": "random-init", "random_init": True, "img_size": size}
    run = _Context(index, config, pixels, preprocess, provenance, trainable, total, fp, job.run_dir, dev,
                   job.bootstrap, job.progress, job.out)
    loss_of = DiceCELoss(to_onehot_y=True, softmax=True)
    hyper = {**config.hyperparameters(), "loss": "monai.DiceCELoss", "model": settings}
    hyper.pop("method"), hyper.pop("backbone_lr")
    return _segment(model, groups, run, lambda logits, masks: loss_of(logits, masks.unsqueeze(1).long()),
                    f"scratch-{model_name}", hyper, {"method": "scratch"})

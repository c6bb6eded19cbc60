"""The training loop: seeded batches, validation-only model choice, early stopping, resumable.

Everything that decides the next step is in the checkpoint (trainable tensors, optimiser,
schedule, torch RNG states, epoch and step, best validation score and tensors, patience), and
the order of every epoch is a function of (seed, epoch) alone. So a run killed at any point
resumes from its last checkpoint and ends with the same model as one never interrupted
(same seed, deterministic kernels). A checkpoint made under another configuration (its
fingerprint differs) is refused.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel, each
rank takes every ``world``-th row of each batch, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.methods import load_trainable_state, trainable_state

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainResult:
    """The chosen (best-on-validation) tensors and how training went."""

    best_state: dict[str, torch.Tensor]
    best_score: float
    best_epoch: int
    history: list[float]  # validation score after each epoch
    epochs_run: int
    stopped_early: bool
    steps: int
    seconds: float  # this process's training time (excludes time before a resume)
    steps_this_run: int
    resumed_from: int | None = None  # global step of the checkpoint resumed from
    extra: dict = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.steps_this_run / self.seconds if self.seconds > 0 else 0.0


def world() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def join_process_group(device: torch.device) -> None:
    """Under torchrun, join the process group (NCCL on CUDA, Gloo on the CPU) once."""
    import torch.distributed as dist

    if world()[1] > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The row order of one epoch: a function of (seed, epoch) only."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def cosine_factor(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def open_checkpoint(run_dir: Path, fingerprint: str) -> dict | None:
    """The checkpoint in ``run_dir`` if it was made by this configuration; refuse any other."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("fingerprint") != fingerprint:
        raise FinetuneError(
            f"{path} was written by another configuration (fingerprint {state.get('fingerprint')}, this run "
            f"{fingerprint}); use another --run-dir, or delete it to start over"
        )
    return state


def train(
    model: nn.Module,
    groups: list[dict],
    train_rows: np.ndarray,
    loss_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    val_score: Callable[[nn.Module], float],
    config: FinetuneConfig,
    *,
    run_dir: Path,
    fingerprint: str,
    device: torch.device,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train_rows``; after each epoch score validation; keep the best.

    ``loss_fn(model, rows)`` returns the mean loss of a batch of rows (a CPU index tensor);
    ``val_score(model)`` the number model choice maximises (higher is better).
    """
    rank, world_size = world()
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    n = len(train_rows)
    rows_all = torch.as_tensor(np.asarray(train_rows), dtype=torch.long)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = config.epochs * steps_per_epoch
    optimiser = torch.optim.AdamW(
        [{"params": g["params"], "lr": g["lr"]} for g in groups], weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: cosine_factor(step, total))
    trained = model
    if world_size > 1:
        join_process_group(device)
        trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    state = open_checkpoint(run_dir, fingerprint)
    epoch, step_in_epoch, step = 0, 0, 0
    best_score, best_epoch, bad_epochs, history, done = -math.inf, -1, 0, [], False
    best_state = trainable_state(model)
    resumed_from = None
    if state is not None:
        load_trainable_state(model, state["trainable"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        epoch, step_in_epoch, step = state["epoch"], state["step_in_epoch"], state["step"]
        best_score, best_epoch, bad_epochs = state["best_score"], state["best_epoch"], state["bad_epochs"]
        history, best_state, done = list(state["history"]), state["best_state"], state["done"]
        resumed_from = step

    def checkpoint() -> None:
        if rank == 0:
            _save(run_dir / CHECKPOINT, {
                "fingerprint": fingerprint, "trainable": trainable_state(model),
                "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None, "epoch": epoch, "step_in_epoch": step_in_epoch, "step": step,
                "best_score": best_score, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
                "history": history, "best_state": best_state, "done": done,
            })

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    bar = tqdm(total=total, initial=step, unit="step", disable=not progress or rank != 0, desc=config.method, leave=False)
    start, steps_here = time.perf_counter(), 0
    while not done and epoch < config.epochs:
        order = epoch_order(n, config.seed, epoch)
        model.train()
        for start_row in range(step_in_epoch * config.batch_size, n, config.batch_size):
            batch = rows_all[order[start_row : start_row + config.batch_size]][rank::world_size]
            with autocast:
                loss = loss_fn(trained, batch)
            if not math.isfinite(float(loss.detach())):
                raise FinetuneError(f"the loss became {float(loss.detach())} at step {step + 1}; lower the learning rates")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step, step_in_epoch, steps_here = step + 1, step_in_epoch + 1, steps_here + 1
            bar.update(1)
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                checkpoint()
        model.eval()
        with torch.no_grad(), autocast:
            score = float(val_score(model))
        history.append(score)
        if score > best_score:
            best_score, best_epoch, bad_epochs = score, epoch, 0
            best_state = trainable_state(model)
        else:
            bad_epochs += 1
        epoch, step_in_epoch = epoch + 1, 0
        done = bad_epochs >= config.patience or epoch >= config.epochs
        bar.set_postfix(val=f"{score:.4f}", best=f"{best_score:.4f}")
        checkpoint()
    bar.close()
    seconds = time.perf_counter() - start
    if not math.isfinite(best_score):
        raise FinetuneError("no epoch gave a finite validation score; check the validation labels")
    return TrainResult(
        best_state=best_state,
        best_score=best_score,
        best_epoch=best_epoch,
        history=history,
        epochs_run=epoch,
        stopped_early=epoch < config.epochs,
        steps=step,
        seconds=seconds,
        steps_this_run=steps_here,
        resumed_from=resumed_from,
    )

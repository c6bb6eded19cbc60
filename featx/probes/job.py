"""``ProbeJob``: everything one probe run is asked to do, typed and checked before any store is read.

The same job is built from `featx probe` flags, from a study YAML's ``probe:`` section, or in
Python, and run by :func:`featx.probes.runner.run_probes`:

>>> from featx.probes import ProbeJob, run_probes
>>> run = run_probes(ProbeJob(stores=("cache/nih/dinov2_vitl14/ab12.zarr",), settings=("knn", "linear")))  # doctest: +SKIP

Defaults are the paper's protocol (PROTOCOL.md). This module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featx.jobs.fields import JobError, coerce_fields, command_line, described, option

SETTINGS = ("knn", "mlknn", "linear", "fewshot", "seg_linear", "seg_unet")
SEG_SETTINGS = ("seg_linear", "seg_unet")
KNN_KS = (10, 20, 100, 200)  # DINOv2's eval/knn.py
KNN_TEMPERATURE = 0.07
LINEAR_LRS = (1e-3, 5e-3, 1e-2, 5e-2)  # the paper's linear grid (x n_last_blocks {1, 4} x avgpool)
SEG_LRS = (1e-4, 1e-3, 1e-2, 1e-1)
SHOTS: tuple[int | str, ...] = (1, 2, 4, 8, 16, "all")
SEG_LOSSES = ("dice", "dice_ce")
# Options that choose where features come from, where results go, or how fast: not what a number means.
NOT_IN_FINGERPRINT = frozenset({
    "out", "stores", "cache", "datasets", "backbones", "key", "size", "weights", "patch_tokens", "device",
    "knn_backend", "save_masks", "seg_in_memory", "allow_test_reuse", "val_records", "settings",
    "scheduler",
})


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> None:
    if value not in allowed:
        raise JobError(f"{flag}: expected one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class ProbeJob:
    """One `featx probe` run: which stores, which settings, the protocol's options, where records go."""

    out: Path | None = option(None, "results file (JSON lines); records are appended")
    stores: tuple[str, ...] = option(
        (), "a published store (<key>.zarr folder, or its http(s)/s3 URL) instead of --cache/--dataset/--backbone; "
        "repeatable", flag="--store", form="repeat")
    cache: Path | None = option(None, "cache root holding the feature stores")
    datasets: tuple[str, ...] = option((), "dataset name (repeatable; with --cache)", flag="--dataset", form="repeat")
    backbones: tuple[str, ...] = option((), "backbone name (repeatable; with --cache)", flag="--backbone", form="repeat")
    key: str | None = option(None, "with --cache: the store whose cache key starts with this")
    size: int | None = option(None, "with --cache: the store extracted at this resolution")
    weights: str | None = option(None, "with --cache: random, pretrained, or a prefix of the weights hash")
    patch_tokens: bool | None = option(None, "with --cache: the store with (or without) patch tokens",
                                       flag="--patch-tokens/--no-patch-tokens")
    settings: tuple[str, ...] = option(
        ("knn", "linear"), "knn | mlknn | linear | fewshot | seg_linear | seg_unet; repeat for several "
        "(default: knn and linear)", flag="--setting", form="repeat")
    device: str = option("cpu", "cpu or cuda (picks the backends)")
    scheduler: str | None = option(None, "Dask scheduler address (tcp://host:8786): spread the (store, setting) "
                                         "jobs over its workers; this process alone appends the records")
    seed: int = option(0, "seed for training, sampling and the bootstrap")
    ks: tuple[int, ...] = option(KNN_KS, "kNN k values selected on validation", form="csv")
    k: int | None = option(None, "fix k (no selection, no validation split needed)")
    temperature: float = option(KNN_TEMPERATURE, "kNN softmax temperature")
    knn_vote: str = option("dinov2", "dinov2 (softmax over the top max(ks) once, first-k sums) or renormalised "
                                     "(softmax per k)")
    multilabel_knn: str = option("mlknn", "'knn' on multi-label data: mlknn or weighted (per-class weighted vote)")
    knn_backend: str | None = option(None, "faiss or torch (default: by --device and what is installed)")
    knn_dtype: str = option("float32", "torch backend only: float32, float16 or bfloat16")
    knn_index: str | None = option(
        None, "approximate kNN for very large stores: ivf or hnsw, with parameters as ivf:nlist=4096,nprobe=64 "
        "(trained on train rows, cached beside the store; every record carries its recall@k against exact search); "
        "default: exact search")
    mlknn_fit_max: int | None = option(None, "estimate ML-kNN tables from at most this many memory-bank points "
                                             "(default: all, exact)")
    linear_backend: str | None = option(None, "torch (paper's SGD grid, default), sklearn or cuml")
    epochs: int = option(10, "linear probe epochs")
    batch_size: int = option(128, "linear probe batch size")
    lrs: tuple[float, ...] = option(LINEAR_LRS, "linear probe learning rates", form="csv")
    shots: tuple[int | str, ...] = option(SHOTS, "few-shot patients per class, e.g. 1,2,4,8,16,all", form="csv")
    fewshot_seeds: int = option(5, "few-shot repeats (seeds)")
    fewshot_probes: tuple[str, ...] = option(("knn", "linear"), "few-shot probes: knn, linear or both", form="csv")
    fewshot_linear: str = option("logistic", "few-shot linear probe: logistic (scikit-learn L-BFGS, C=1) or sgd "
                                             "(the paper's SGD linear layer)")
    bootstrap: int = option(1000, "patient bootstrap resamples for the 95% interval")
    val_bootstrap: int = option(200, "resamples for validation records")
    val_records: bool = option(True, "also record every candidate's validation score",
                               flag="--val-records/--no-val-records")
    allow_test_reuse: bool = option(
        False, "a deliberate re-run: do not warn when a test split already scored with other hyper-parameters is "
        "scored again (records still carry test_reuse)", flag="--allow-test-reuse")
    seg_lrs: tuple[float, ...] = option(SEG_LRS, "segmentation decoders: learning rates selected on validation Dice",
                                        form="csv")
    seg_epochs: int = option(20, "segmentation decoder epochs")
    seg_batch_size: int = option(16, "segmentation decoder batch size (slices/images)")
    seg_loss: str = option("dice", "segmentation loss: dice or dice_ce (Dice + cross-entropy)")
    seg_fewshot_lr: float = option(1e-3, "few-shot segmentation: the fixed learning rate (no validation)")
    save_masks: Path | None = option(None, "write predicted test masks here: NIfTI with the source affine (3D), "
                                           "PNG (2D)")
    seg_in_memory: bool = option(False, "segmentation: load the patch tokens into memory once instead of "
                                        "streaming them from the store each epoch", flag="--seg-in-memory")

    def __post_init__(self) -> None:
        coerce_fields(self)
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise JobError(f"--setting: unknown setting(s) {unknown}; expected some of {list(SETTINGS)}")
        if not self.settings:
            raise JobError("--setting: give at least one setting")
        if not self.stores and self.cache is None:
            raise JobError("give --store PATH, or --cache DIR with --dataset and --backbone")
        if self.cache is not None and (not self.datasets or not self.backbones):
            raise JobError("--cache needs --dataset and --backbone")
        _choice(self.multilabel_knn, ("mlknn", "weighted"), "--multilabel-knn")
        _choice(self.knn_vote, ("dinov2", "renormalised"), "--knn-vote")
        _choice(self.fewshot_linear, ("logistic", "sgd"), "--fewshot-linear")
        _choice(self.knn_dtype, ("float32", "float16", "bfloat16"), "--knn-dtype")
        _choice(self.seg_loss, SEG_LOSSES, "--seg-loss")
        if self.knn_backend is not None:
            _choice(self.knn_backend, ("faiss", "torch"), "--knn-backend")
        if self.linear_backend is not None:
            _choice(self.linear_backend, ("torch", "sklearn", "cuml"), "--linear-backend")
        bad_fewshot = [p for p in self.fewshot_probes if p not in ("knn", "linear")]
        if bad_fewshot or not self.fewshot_probes:
            raise JobError(f"--fewshot-probes: expected knn, linear or both, got {list(self.fewshot_probes)}")
        if not self.ks or any(k < 1 for k in self.ks) or (self.k is not None and self.k < 1):
            raise JobError(f"--ks / --k: expected positive neighbour counts, got {list(self.ks)} / {self.k}")
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise JobError(f"--lrs: expected positive learning rates, got {list(self.lrs)}")
        if not self.seg_lrs or any(lr <= 0 for lr in self.seg_lrs):
            raise JobError(f"--seg-lrs: expected positive learning rates, got {list(self.seg_lrs)}")
        if any(isinstance(s, str) and s != "all" or isinstance(s, int) and s < 1 for s in self.shots):
            raise JobError(f"--shots: expected positive integers or 'all', got {list(self.shots)}")
        for flag, value in (("--seg-epochs", self.seg_epochs), ("--seg-batch-size", self.seg_batch_size),
                            ("--epochs", self.epochs), ("--batch-size", self.batch_size),
                            ("--fewshot-seeds", self.fewshot_seeds)):
            if value < 1:
                raise JobError(f"{flag} must be at least 1, got {value}")
        if self.seg_fewshot_lr <= 0 or self.temperature <= 0:
            raise JobError("--seg-fewshot-lr and --temperature must be positive")
        if self.bootstrap < 0 or self.val_bootstrap < 0:
            raise JobError("--bootstrap and --val-bootstrap must be 0 or more")

    def fingerprint(self) -> str:
        """A hash of every option that changes what a number means (not where it is read or written)."""
        options = {field.name: getattr(self, field.name) for field, _ in described(ProbeJob)
                   if field.name not in NOT_IN_FINGERPRINT}
        return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def command_line(self) -> str:
        """The `featx probe` command that runs exactly this job."""
        return command_line("probe", self)

    def record_fields(self, setting: str) -> dict[str, Any]:
        """What every record of ``setting`` carries about the job that made it."""
        return {"command": self.command_line(), "job_setting": setting, "job_fingerprint": self.fingerprint()}

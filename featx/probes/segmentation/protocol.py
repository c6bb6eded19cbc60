"""The segmentation protocol on one store: lr grid on validation Dice, retrain, test once.

For a decoder (``seg_linear`` / ``seg_unet``): each learning rate of the grid trains on
**train** and is scored on **val** (macro Dice per unit; the test split is sealed
meanwhile); the best is retrained on **train+val** and the test split is scored once
through :meth:`featx.evaluation.selection.Splits.score_test_once`. Few-shot: n training
images (2D) or n training volumes (3D), several seeds, a fixed learning rate and no
validation data at all; one outcome per seed and a mean over seeds per n.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featx.decoders.models import n_parameters
from featx.evaluation.features import ProbeError
from featx.evaluation.ledger import fingerprint_of
from featx.evaluation.segmentation import SegScored, score_segmentation, volume_order
from featx.evaluation.selection import Splits
from featx.probes.job import SEG_LRS as LRS
from featx.probes.job import ProbeJob
from featx.probes.segmentation.data import MemoryBatches, SegmentationData, StoreBatches
from featx.probes.segmentation.train import TrainConfig, fit, predict


@dataclass(frozen=True)
class SegOptions:
    """Everything `featx probe` lets a user set for the segmentation decoders."""

    lrs: tuple[float, ...] = LRS
    epochs: int = 20
    batch_size: int = 16
    loss: str = "dice"
    fewshot_lr: float = 1e-3
    save_masks: Path | None = None
    in_memory: bool = False  # load the tokens once instead of streaming them from the store
    prefetch: int = 4

    @classmethod
    def of(cls, job: ProbeJob) -> SegOptions:
        """The decoder options of a probe job."""
        return cls(lrs=job.seg_lrs, epochs=job.seg_epochs, batch_size=job.seg_batch_size, loss=job.seg_loss,
                   fewshot_lr=job.seg_fewshot_lr, save_masks=job.save_masks, in_memory=job.seg_in_memory)


@dataclass
class SegOutcome:
    """What one decoder setting produced on one store."""

    setting: str
    hyperparameters: dict[str, Any]
    test: SegScored
    n_train: int
    n_test: int
    val: list[tuple[dict[str, Any], SegScored]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    predictions: np.ndarray | None = None  # test masks, (n_test, S, S), for --save-masks
    test_positions: np.ndarray | None = None


def _source(data: SegmentationData, layers: list[str], options: SegOptions, positions: np.ndarray):
    if options.in_memory:
        return MemoryBatches(data, layers, positions)
    return StoreBatches(data, layers, depth=options.prefetch)


def _score(data: SegmentationData, positions: np.ndarray, pred: np.ndarray, n_boot: int, seed: int, *, sealed_ok: bool = False) -> SegScored:
    if data.is_3d:
        volume_order(data.volume_ids[positions], data.slice_index[positions], data.dataset)  # raises on missing slices
    truth = data.read_masks(positions, sealed_ok=sealed_ok)
    return score_segmentation(
        pred, truth, data.unit_ids[positions], data.patients[positions], class_names=data.class_names,
        unit=data.level, n_boot=n_boot, seed=seed,
    )


def evaluate_decoder(
    data: SegmentationData,
    setting: str,
    *,
    options: SegOptions = SegOptions(),
    splits: Splits | None = None,
    device: str = "cpu",
    seed: int = 0,
    n_boot: int = 1000,
    val_boot: int = 200,
    lr: float | None = None,
    test_name: Any = None,
    setting_name: str | None = None,
    hyper_extra: dict[str, Any] | None = None,
) -> SegOutcome:
    """Select the lr on validation (or use ``lr``), retrain on train+val, score test once.

    ``hyper_extra`` is added to the recorded hyper-parameters before the test scoring is
    ledgered (few-shot: shots and seed, which name the scoring).
    """
    layers = data.decoder_layers(setting)
    splits = splits or Splits(data.probe_data())
    dims = [data.dims[layer] for layer in layers]
    every = np.concatenate([splits.train_val.rows, splits.test_inputs().rows])
    source = _source(data, layers, options, every)
    kw = {"dims": dims, "n_classes": data.n_classes, "out_size": data.mask_size, "device": device, "seed": seed}

    def config(rate: float) -> TrainConfig:
        return TrainConfig(setting, float(rate), options.epochs, options.batch_size, options.loss)

    val_scores: list[tuple[dict[str, Any], SegScored]] = []
    t0 = time.perf_counter()
    if lr is None:
        train, val = splits.train.rows, splits.val.rows

        def score_val(rate: float) -> float:
            model = fit(source, train, config(rate), **kw)
            scored = _score(data, val, predict(source, model, val, batch_size=options.batch_size, device=device), val_boot, seed)
            val_scores.append((config(rate).to_dict(), scored))
            return scored.values["dice"]

        chosen = splits.select(list(options.lrs), score_val).best
        fit_rows, retrained_on, selected_on = splits.train_val.rows, "train+val", "val dice (per " + data.level + ")"
    else:
        chosen, fit_rows, retrained_on, selected_on = lr, splits.train.rows, "train", "fixed"
    final = config(chosen)
    model = fit(source, fit_rows, final, **kw)
    test = splits.test_inputs().rows
    kept: dict[str, np.ndarray] = {}

    def predict_test(inputs) -> np.ndarray:
        kept["pred"] = predict(source, model, inputs.rows, batch_size=options.batch_size, device=device)
        return kept["pred"]

    hyper = {**final.to_dict(), "layers": layers, "selected_on": selected_on, "retrained_on": retrained_on, **(hyper_extra or {})}
    scored = splits.score_test_once(
        test_name or setting, predict_test, setting=setting_name or setting, hyperparameters=hyper, seed=seed,
        scorer=lambda pred: _score(data, test, pred, n_boot, seed, sealed_ok=True),
    )
    return SegOutcome(
        setting=setting_name or setting,
        hyperparameters=hyper,
        test=scored,
        n_train=int(len(fit_rows)),
        n_test=int(len(test)),
        val=val_scores,
        extra={"decoder_parameters": n_parameters(model), "n_train_units": int(len(set(data.unit_ids[fit_rows]))),
               "seconds": round(time.perf_counter() - t0, 3), "reader": "memory" if options.in_memory else "store",
               **splits.test_use(test_name or setting).as_record()},
        predictions=kept.get("pred"),
        test_positions=test,
    )


# ---- few-shot ------------------------------------------------------------------------------------
def fewshot_positions(data: SegmentationData, shots: int | str, seed: int) -> np.ndarray:
    """Train positions of ``shots`` training units (images or volumes) drawn with ``seed``."""
    train = data.positions("train")
    if shots == "all":
        return train
    units = np.array(list(dict.fromkeys(data.unit_ids[train].tolist())))
    n = int(shots)
    if n > len(units):
        raise ProbeError(f"{data.dataset}: {n} training {data.level}s requested, the train split has {len(units)}")
    chosen = np.random.default_rng(seed).choice(units, size=n, replace=False)
    return train[np.isin(data.unit_ids[train], chosen)]


def _mean_scored(scores: list[SegScored]) -> SegScored:
    first = scores[0]
    mean = lambda key, attr: np.nanmean(np.stack([np.asarray(getattr(s, attr)[key], float) for s in scores]), 0)  # noqa: E731
    return dataclasses.replace(
        first,
        values={k: float(mean(k, "values")) for k in first.values},
        intervals={k: tuple(mean(k, "intervals")) for k in first.intervals},
        per_class={k: mean(k, "per_class") for k in first.per_class},
        per_class_intervals={k: mean(k, "per_class_intervals") for k in first.per_class_intervals},
    )


def evaluate_seg_fewshot(
    data: SegmentationData,
    decoders: Sequence[str],
    *,
    shots: Sequence[int | str],
    n_seeds: int,
    options: SegOptions = SegOptions(),
    device: str = "cpu",
    seed: int = 0,
    n_boot: int = 1000,
    problems: list[str] | None = None,
    name: str = "",
    echo: Callable[[str], None] | None = None,
) -> list[SegOutcome]:
    """Per (decoder, n, seed) outcomes and one mean-over-seeds outcome per (decoder, n)."""
    outcomes: list[SegOutcome] = []
    base = data.probe_data()
    for n in shots:
        repeats = 1 if n == "all" else n_seeds
        try:
            draws = [(seed + r, fewshot_positions(data, n, seed + r)) for r in range(repeats)]
        except ProbeError as error:
            if problems is not None:
                problems.append(f"{name + ' / ' if name else ''}fewshot n={n}: {error}")
            continue
        for decoder in decoders:
            runs = []
            for run_seed, rows in draws:
                split = np.where(base.split == "test", "test", "unused").astype(object)
                split[rows] = "train"
                splits = Splits(dataclasses.replace(base, split=split.astype(str)))
                tag = {"shots": n, "fewshot_seed": run_seed, "n_units": int(len(set(data.unit_ids[rows]))),
                       "selected_on": "fixed (few-shot: no validation)"}
                outcome = evaluate_decoder(
                    data, decoder, options=options, splits=splits, device=device, seed=run_seed, n_boot=n_boot,
                    lr=options.fewshot_lr, test_name=(decoder, n, run_seed), setting_name=f"fewshot-{decoder}", hyper_extra=tag,
                )
                outcome.extra = {**outcome.extra, "shots": n, "fewshot_seed": run_seed}
                outcomes.append(outcome)
                runs.append(outcome)
                if echo:
                    echo(f"{name} / fewshot-{decoder} n={n} seed={run_seed}: test dice+jaccard {outcome.test.headline:.3f}")
            headline = np.array([r.test.headline for r in runs], dtype=float)
            hyper = {k: v for k, v in runs[0].hyperparameters.items() if k not in ("fewshot_seed", "n_units")}
            outcomes.append(
                SegOutcome(
                    setting=f"fewshot-{decoder}",
                    hyperparameters={**hyper, "seeds": [r.hyperparameters["fewshot_seed"] for r in runs]},
                    test=_mean_scored([r.test for r in runs]),
                    n_train=int(np.mean([r.n_train for r in runs])),
                    n_test=runs[0].n_test,
                    extra={
                        "aggregate": "mean_over_seeds", "n_seeds": len(runs), "shots": n,
                        "test_reuse": max(int(r.extra.get("test_reuse", 0)) for r in runs),
                        "test_use": {**runs[0].extra["test_use"], "what": f"fewshot-{decoder}" + json.dumps({"shots": n}),
                                     "fingerprint": fingerprint_of(hyper, seed)},
                        "macro_std": float(np.nanstd(headline, ddof=1)) if len(runs) > 1 else 0.0,
                        "macro_min": float(np.nanmin(headline)), "macro_max": float(np.nanmax(headline)),
                        "macro_per_seed": [float(v) for v in headline],
                        "ci_note": "ci_low/ci_high: mean over seeds of each seed's patient-bootstrap interval",
                    },
                )
            )
    return outcomes

"""The segmentation part of ``run_probes``: every decoder setting on one segmentation store."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from featx.cache.select import StoreFacts
from featx.cache.store import FeatureStore
from featx.decoders.models import decoder_blocks
from featx.evaluation.features import ProbeError
from featx.evaluation.ledger import TestReuseWarning
from featx.evaluation.records import append_jsonl, check_label_names, finalise
from featx.evaluation.selection import Splits
from featx.probes.job import SEG_SETTINGS, ProbeJob
from featx.probes.segmentation.data import open_segmentation
from featx.probes.segmentation.masks_out import save_masks
from featx.probes.segmentation.protocol import (
    SegOptions,
    SegOutcome,
    evaluate_decoder,
    evaluate_seg_fewshot,
)
from featx.probes.segmentation.records import seg_outcome_records, with_kept_predictions
from featx.probes.smallsets import small_set_warnings


def _say_outcome(say: Callable[[str], None], name: str, outcome: SegOutcome) -> None:
    t = outcome.test
    low, high = t.intervals["dice_jaccard_mean"]
    say(
        f"{name} / {outcome.setting}: test dice+jaccard mean {t.headline:.3f} [{low:.3f}, {high:.3f}] per {t.unit}, "
        f"dice {t.values['dice']:.3f}, over all {'voxels' if t.unit == 'volume' else 'pixels'} "
        f"{t.values['dice_jaccard_mean_' + t.pooled]:.3f} (lr={outcome.hyperparameters['lr']}, "
        f"loss={outcome.hyperparameters['loss']}) in {outcome.extra.get('seconds', 0):.1f}s"
    )


def _run_setting(setting: str, data, job: ProbeJob, options: SegOptions, decoders: list[str], run: Any, name: str,
                 say: Callable[[str], None]) -> list[SegOutcome]:
    seed, device, n_boot = job.seed, job.device, job.bootstrap
    if setting in SEG_SETTINGS:
        return [evaluate_decoder(data, setting, options=options, device=device, seed=seed, n_boot=n_boot, val_boot=job.val_bootstrap,
                                 splits=Splits(data.probe_data(), allow_test_reuse=job.allow_test_reuse))]
    if setting == "fewshot":
        return evaluate_seg_fewshot(
            data, decoders or [d for d in SEG_SETTINGS if len(data.layers) >= decoder_blocks(d)], shots=job.shots, n_seeds=job.fewshot_seeds,
            options=options, device=device, seed=seed, n_boot=n_boot, problems=run.problems, name=name, echo=say,
        )
    raise ProbeError(f"{setting!r} is a classification setting and this is a segmentation store; "
                     f"use --setting {' / '.join(SEG_SETTINGS)} (or fewshot)")


def run_segmentation_store(
    store: FeatureStore, job: ProbeJob, *, run: Any, existing: list[dict[str, Any]], out: Path | None,
    say: Callable[[str], None],
) -> None:
    """Run the job's decoder settings (and segmentation few-shot) on ``store``; append to ``run`` (and ``out``)."""
    from featx.probes.runner import counted, write_failure

    name = f"{store.dataset} x {store.backbone_name}"
    seed, settings, options = job.seed, job.settings, SegOptions.of(job)
    try:
        check_label_names(existing, store.dataset, store.label_names, job.out or "")
        data = open_segmentation(store)
        say(f"{name}: {data.n} slices/images of {len(set(data.unit_ids))} {data.level}s, patch tokens of "
            f"{len(data.layers)} blocks on a {data.grid[0]}x{data.grid[1]} grid"
            + (f" ({data.n_invalid} invalid rows left out)" if data.n_invalid else ""))
        if data.provenance.get("random_init"):
            say(f"{name}: features come from RANDOMLY INITIALISED weights; results are marked random_init=true")
        facts, small = asdict(StoreFacts.of(store.attrs)), small_set_warnings(data.probe_data())
        if small:
            say(f"{name}: warning: small evaluation set, read its numbers with care: {'; '.join(small)}")
    except (ProbeError, ValueError) as error:
        run.problems.append(f"{name}: {error}")
        write_failure(run, out, job, store, settings, str(error))
        say(f"{name}: skipped: {error}")
        return
    decoders = [s for s in settings if s in SEG_SETTINGS]
    for setting in settings:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", TestReuseWarning)
                outcomes = _run_setting(setting, data, job, options, decoders, run, name, say)
            for message in counted(str(w.message) for w in caught if issubclass(w.category, TestReuseWarning)):
                say(f"{name} / {setting}: WARNING: {message}")
            records = []
            for outcome in outcomes:
                records.extend(with_kept_predictions(job.out, seg_outcome_records(outcome, data, seed, job.val_records), outcome, data))
            records = finalise({**record, "store": facts, "small_set_warnings": small, **job.record_fields(setting)} for record in records)
            if out is not None:
                append_jsonl(out, records)
            run.records.extend(records)
            run.outcomes.extend(outcomes)
            for outcome in outcomes:
                if outcome.extra.get("aggregate") or outcome.extra.get("fewshot_seed") is not None:
                    continue
                _say_outcome(say, name, outcome)
                if options.save_masks is not None and outcome.predictions is not None:
                    folder = Path(options.save_masks) / str(data.dataset) / outcome.setting
                    files = save_masks(data, outcome.test_positions, outcome.predictions, folder)
                    say(f"{name} / {outcome.setting}: {len(files)} predicted masks written to {folder}")
        except (ProbeError, ValueError, RuntimeError, OSError) as error:
            run.problems.append(f"{name} / {setting}: {error}")
            write_failure(run, out, job, store, [setting], str(error))
            say(f"{name} / {setting}: failed: {error}")

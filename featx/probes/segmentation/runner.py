"""The segmentation part of ``run_probes``: every decoder setting on one segmentation store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from featx.cache.store import FeatureStore
from featx.decoders.models import decoder_blocks
from featx.evaluation.features import ProbeError
from featx.evaluation.records import append_jsonl, check_label_names, finalise
from featx.probes.segmentation.data import open_segmentation
from featx.probes.segmentation.masks_out import save_masks
from featx.probes.job import ProbeJob
from featx.probes.segmentation.protocol import SEG_SETTINGS, SegOptions, SegOutcome, evaluate_decoder, evaluate_seg_fewshot
from featx.probes.segmentation.records import seg_outcome_records


def _say_outcome(say: Callable[[str], None], name: str, outcome: SegOutcome) -> None:
    t = outcome.test
    low, high = t.intervals["dice_jaccard_mean"]
    say(
        f"{name} / {outcome.setting}: test dice+jaccard mean {t.headline:.3f} [{low:.3f}, {high:.3f}] per {t.unit}, "
        f"dice {t.values['dice']:.3f}, over all {'voxels' if t.unit == 'volume' else 'pixels'} "
        f"{t.values['dice_jaccard_mean_' + t.pooled]:.3f} (lr={outcome.hyperparameters['lr']}, "
        f"loss={outcome.hyperparameters['loss']}) in {outcome.extra.get('seconds', 0):.1f}s"
    )


def run_segmentation_store(
    store: FeatureStore, job: ProbeJob, *, run: Any, existing: list[dict[str, Any]], out: Path | None,
    say: Callable[[str], None],
) -> None:
    """Run the job's decoder settings (and segmentation few-shot) on ``store``; append to ``run`` (and ``out``)."""
    from featx.probes.runner import write_failure

    name = f"{store.dataset} x {store.backbone_name}"
    seed, settings, options = job.seed, job.settings, SegOptions.of(job)
    device, n_boot = job.device, job.bootstrap
    try:
        check_label_names(existing, store.dataset, store.label_names, job.out or "")
        data = open_segmentation(store)
        say(f"{name}: {data.n} slices/images of {len(set(data.unit_ids))} {data.level}s, patch tokens of "
            f"{len(data.layers)} blocks on a {data.grid[0]}x{data.grid[1]} grid"
            + (f" ({data.n_invalid} invalid rows left out)" if data.n_invalid else ""))
        if data.provenance.get("random_init"):
            say(f"{name}: features come from RANDOMLY INITIALISED weights; results are marked random_init=true")
    except (ProbeError, ValueError) as error:
        run.problems.append(f"{name}: {error}")
        write_failure(run, out, job, store, settings, str(error))
        say(f"{name}: skipped: {error}")
        return
    decoders = [s for s in settings if s in SEG_SETTINGS]
    for setting in settings:
        try:
            if setting in SEG_SETTINGS:
                outcomes = [evaluate_decoder(data, setting, options=options, device=device, seed=seed, n_boot=n_boot, val_boot=job.val_bootstrap)]
            elif setting == "fewshot":
                outcomes = evaluate_seg_fewshot(
                    data, decoders or [d for d in SEG_SETTINGS if len(data.layers) >= decoder_blocks(d)], shots=job.shots, n_seeds=job.fewshot_seeds, options=options,
                    device=device, seed=seed, n_boot=n_boot, problems=run.problems, name=name, echo=say,
                )
            else:
                raise ProbeError(f"{setting!r} is a classification setting and this is a segmentation store; "
                                 f"use --setting {' / '.join(SEG_SETTINGS)} (or fewshot)")
            records = []
            for outcome in outcomes:
                records.extend(seg_outcome_records(outcome, data, seed, job.val_records))
            records = finalise({**record, **job.record_fields(setting)} for record in records)
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

"""``ExtractJob`` and ``run_extract``: one store of one (dataset, backbone, size), built or found up to date.

The same job is built from `featx extract` flags, a study YAML, the demo, or Python:

>>> from featx.pipeline.job import ExtractJob, run_extract
>>> job = ExtractJob(dataset="nih_chestxray14", root="data/nih", backbone="dinov2_vitl14", cache="cache")  # doctest: +SKIP
>>> report = run_extract(job)  # doctest: +SKIP

Everything a user can get wrong (device, cache folder, options, backbone name) is checked before the
dataset is indexed or a model is loaded. This module imports nothing heavy at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featx.jobs.fields import JobError, coerce_fields, option

FINGERPRINT_MEANING = {
    "stat": "stat (size and mtime; a file rewritten with both unchanged is missed: --fingerprint content)",
    "content": "content (a hash of every input file's bytes)",
}
MAX_LISTED = 20  # failed or quarantined inputs named in a summary (the store and `featx datasets check` hold all)


@dataclass(frozen=True)
class ExtractJob:
    """One `featx extract` run: a dataset through one frozen backbone into one feature store."""

    dataset: str = option(help="Dataset adapter name (`featx datasets`), e.g. csv.")
    root: Path = option(help="The dataset as downloaded (a CSV file for --dataset csv).")
    backbone: str = option(help="Backbone name (`featx backbones`), e.g. dinov2_vitl14.")
    cache: Path = option(help="Cache root folder holding the feature stores.")
    size: int = option(224, "Square input resolution in pixels.")
    weights: Path | None = option(None, "Local weights file (safetensors, pth, bin).")
    random_init: bool = option(False, "Use random weights (recorded in the store).", flag="--random-init")
    device: str = option("cpu", "cpu or cuda.")
    batch_size: int = option(64, "Images per forward pass.")
    workers: int = option(2, "DataLoader worker processes decoding images.")
    n_last: int = option(4, "Store CLS and pooled tokens of this many last blocks.")
    patch_tokens: bool = option(False, "Also store patch tokens (segmentation).", flag="--patch-tokens")
    patch_blocks: int | None = option(None, "Patch tokens for only the last N of the --n-last blocks (U-Net: 5, "
                                            "linear decoder: 1).")
    patch_format: str = option("float16", "Patch tokens as float16, or int8 with a per-token scale (about half "
                                          "the bytes).")
    block_rows: int | None = option(None, "Rows per store block (default: chosen from sizes).")
    name: str | None = option(None, "Dataset name in the cache (csv: default the CSV's stem).")
    fingerprint: str = option("stat", "How an unchanged input is recognised: stat (size+mtime, fast) or content "
                                      "(hash of the bytes).")
    replace: bool = option(False, "Rebuild the store of this name even if it holds another source or other "
                                  "samples.", flag="--replace")
    modality: str | None = option(None, "csv: xray, ct, mri or other (sets intensity defaults).")
    intensity: str | None = option(None, "Override intensity rule: minmax, window or percentile.")
    window: tuple[float, float] | None = option(None, "CT window low high, in HU.")
    options: dict[str, Any] = option({}, "Adapter option key=value (repeatable).", flag="--option", form="pairs")
    model_overrides: dict[str, Any] = option(
        {}, "Architecture override key=value, e.g. depth=2 (random or matching weights).", flag="--model-override",
        form="pairs")
    scheduler: str | None = option(None, "Dask scheduler address (tcp://host:8786): spread blocks over its workers "
                                         "(GPUs, nodes).")
    pixel_cache: bool = option(
        True, "Decode every raw file once into the dataset's pixel store and feed backbones from it (default); "
        "--no-pixel-cache decodes the raw files for this run only.", flag="--pixel-cache/--no-pixel-cache")
    decode_workers: int | None = option(None, "Processes decoding raw files into the pixel store (default: every "
                                              "CPU core).")
    progress: bool = True  # progress bars (off for quiet library use)

    def __post_init__(self) -> None:
        coerce_fields(self)
        if self.fingerprint not in FINGERPRINT_MEANING:
            raise JobError(f"--fingerprint: expected stat or content, got {self.fingerprint!r}")
        if self.patch_format not in ("float16", "int8"):
            raise JobError(f"--patch-format: expected float16 or int8, got {self.patch_format!r}")
        if self.patch_blocks is not None and not (self.patch_tokens and 1 <= self.patch_blocks <= self.n_last):
            raise JobError(f"--patch-blocks {self.patch_blocks}: needs --patch-tokens and 1 <= N <= --n-last "
                           f"({self.n_last})")
        if self.intensity is not None and self.intensity not in ("minmax", "window", "percentile"):
            raise JobError(f"--intensity: expected minmax, window or percentile, got {self.intensity!r}")
        for flag, value in (("--size", self.size), ("--batch-size", self.batch_size), ("--n-last", self.n_last)):
            if value < 1:
                raise JobError(f"{flag} must be at least 1, got {value}")
        if self.workers < 0 or (self.block_rows is not None and self.block_rows < 1):
            raise JobError("--workers must be 0 or more and --block-rows at least 1")

    def request(self) -> Any:
        """How to load the backbone (a picklable :class:`featx.backbones.request.BackboneRequest`)."""
        from featx.backbones.request import BackboneRequest

        return BackboneRequest(
            name=self.backbone, img_size=self.size, weights=str(self.weights) if self.weights else None,
            random_init=self.random_init, n_last=self.n_last, patch_tokens=self.patch_tokens,
            model_overrides=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                         for k, v in self.model_overrides.items())),  # hashable: one load per process
        )


@dataclass
class ExtractReport:
    """What an extraction did (or found already done), in the terms its summary uses."""

    path: Path
    key: str
    n_rows: int
    reused: bool  # the published store already held exactly these samples: nothing was run
    rows_extracted: int = 0  # new, changed and previously failed rows
    rows_reused: int = 0  # unchanged rows copied from the previous store
    rows_forward: int = 0  # rows the backbone ran on (also unchanged rows recomputed to keep fresh-run batches)
    failed: list[str] = field(default_factory=list)  # "row N (source): error" of rows the store marks failed
    quarantined: list[str] = field(default_factory=list)  # inputs the adapter set aside before extraction
    intensity: str = ""  # the intensity rule in force, in words
    lines: list[str] = field(default_factory=list)  # the summary, as printed

    @property
    def partial(self) -> bool:
        """Whether some inputs produced no features (exit status 3 on the command line)."""
        return bool(self.failed or self.quarantined)


def intensity_rule(preprocessing: dict[str, Any]) -> str:
    """``window [-1024, 600] HU``, ``percentile [5, 95]`` or ``minmax per image``: the rule in words."""
    rule = preprocessing.get("intensity")
    if rule == "window":
        low, high = preprocessing.get("window", (None, None))
        return f"window [{low:g}, {high:g}] HU"
    if rule == "percentile":
        low, high = preprocessing.get("percentiles", (None, None))
        return f"percentile clip [{low:g}, {high:g}]"
    return "minmax per image"


def _preflight(job: ExtractJob) -> None:
    """The checks that need no dataset and no model: device, cache folder, backbone name."""
    from featx.backbones.registry import check_backbone_name
    from featx.jobs.checks import check_cache_folder, check_device

    check_device(job.device)
    check_cache_folder(job.cache)
    check_backbone_name(job.backbone)  # an unknown name is one sentence before the dataset is indexed


def run_extract(job: ExtractJob, echo: Callable[[str], None] = print) -> ExtractReport:
    """Build (or resume, or find up to date) the job's feature store; ``echo`` receives every line said."""
    from featx.cache.store import FeatureStore, store_dir
    from featx.datasets.ct_hint import ct_window_warning
    from featx.datasets.preprocess import PreprocessConfig
    from featx.datasets.registry import index_from_options
    from featx.datasets.stamps import row_stamps
    from featx.jobs.checks import folder_is_writable, read_only_error
    from featx.pipeline.up_to_date import request_fields, up_to_date_store, weights_hash_of

    _preflight(job)
    index = index_from_options(job.dataset, job.root, job.options, job.name, job.modality)
    quarantined = [str(problem) for problem in index.problems]
    for problem in quarantined:
        echo(f"quarantined: {problem}")
    preprocess = PreprocessConfig.for_modality(index.modality, job.size, intensity=job.intensity, window=job.window)
    if job.dataset == "csv" and (warning := ct_window_warning(index, preprocess.intensity, job.root)):
        echo(warning)
    fields = request_fields(job.backbone, job.size, job.n_last, job.patch_tokens, job.model_overrides,
                            job.random_init, seed=0)
    folder = store_dir(job.cache, index.dataset, job.backbone)
    done = up_to_date_store(job.cache, index.dataset, fields, weights_hash_of(job.weights, job.random_init),
                            preprocess.to_dict(), index)
    if done is not None:
        return _up_to_date(done, job, quarantined, echo)
    writable = folder_is_writable(folder)
    if not writable and not any(folder.glob("*.zarr")):
        raise read_only_error(job.cache)
    loaded = job.request().load()
    from featx.pipeline.extract import store_key

    final = store_dir(job.cache, index.dataset, loaded.spec.name) / f"{store_key(index, loaded, preprocess)[0]}.zarr"
    if not writable:
        if final.exists() and FeatureStore.open(final).matches_index(index, row_stamps(index.table)):
            return _up_to_date(final, job, quarantined, echo)
        raise read_only_error(job.cache)
    if loaded.random_init:
        echo(f"{job.backbone}: RANDOM weights (--random-init); results will say so")
    result, pixels = _extract(job, index, loaded, preprocess, final, echo)
    report = ExtractReport(
        path=result.path, key=result.key, n_rows=result.n_rows, reused=result.reused,
        rows_extracted=result.rows_extracted, rows_reused=result.rows_reused,
        rows_forward=result.steady.forward_rows, failed=_failed_rows(result.failures), quarantined=quarantined,
        intensity=intensity_rule(preprocess.to_dict()),
    )
    report.lines = _summary(report, job, result, pixels)
    for line in report.lines:
        echo(line)
    return report


def _extract(job: ExtractJob, index: Any, loaded: Any, preprocess: Any, final: Path, echo: Callable[[str], None]):
    """The extraction itself (interrupt-safe), here or over a Dask cluster; returns (result, pixel cache)."""
    from featx.jobs.interrupts import keep_work_on_interrupt
    from featx.pipeline.dask_extract import dask_runner
    from featx.pipeline.extract import extract
    from featx.pipeline.pixel_feed import PixelCache

    partial = final.with_name(final.name + ".partial")
    _note_kept_layout(partial, job, index, echo)
    with contextlib.ExitStack() as stack:
        stack.enter_context(keep_work_on_interrupt(partial))
        runner, client = None, None
        if job.scheduler:
            from distributed import Client

            client = stack.enter_context(Client(job.scheduler))
        pixels = (PixelCache(job.cache, workers=job.decode_workers, client=client, fingerprint=job.fingerprint)
                  if job.pixel_cache else None)
        if client is not None:
            runner = dask_runner(client, index, job.request(), preprocess, device=job.device,
                                 batch_size=job.batch_size, pixel_cache=pixels)
        result = extract(
            index, loaded, preprocess, job.cache, device=job.device, batch_size=job.batch_size,
            num_workers=job.workers, block_rows=job.block_rows, runner=runner, source_root=job.root,
            replace=job.replace, fingerprint=job.fingerprint, pixel_cache=pixels, patch_format=job.patch_format,
            patch_blocks=job.patch_blocks, progress=job.progress,
        )
    return result, pixels


def _note_kept_layout(partial: Path, job: ExtractJob, index: Any, echo: Callable[[str], None]) -> None:
    """Say when --block-rows is ignored because a killed run is resumed with its own layout."""
    from featx.cache.store import FeatureStore, StoreError
    from featx.datasets.stamps import row_stamps

    if job.block_rows is None or not (partial / "zarr.json").exists():
        return
    try:
        resumed = FeatureStore.open(partial, allow_partial=True)
    except StoreError:  # laid out only in part: it is laid out again
        return
    if resumed.block_rows != job.block_rows and resumed.matches_index(index, row_stamps(index.table)):
        echo(f"note: --block-rows {job.block_rows} ignored: resuming {partial}, laid out with "
             f"{resumed.block_rows} rows per block")


def _failed_rows(failures: Any) -> list[str]:
    return [f"row {row.row} ({row.source}): {row.error}" for row in failures.itertuples()]


def _listed(title: str, items: list[str]) -> list[str]:
    """``title`` and the first items, one per line, then how many more."""
    if not items:
        return []
    lines = [title] + [f"  {item}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        lines.append(f"  ... and {len(items) - MAX_LISTED} more")
    return lines


def _summary(report: ExtractReport, job: ExtractJob, result: Any, pixels: Any) -> list[str]:
    """The lines an extraction ends with: pixels, store, key, what ran and why, intensity, what failed."""
    lines = pixel_summary(pixels) if pixels is not None else []
    if result.reused:
        verb = "up to date"
    else:
        verb = f"extracted {result.rows_extracted} rows ({result.rows_per_second:.1f} rows/s: new, changed or resumed)"
        if result.rows_reused:
            verb += f", {result.rows_reused} unchanged rows copied from the previous store"
        recomputed = report.rows_forward - result.rows_extracted
        if recomputed > 0:
            verb += (f"; the backbone ran on {report.rows_forward} rows: {recomputed} unchanged rows were recomputed "
                     "so that every batch matches a fresh run (their stored features are kept)")
    lines += [
        f"store: {result.path}",
        f"cache key: {result.key}  ({result.n_rows} rows, {verb})",
        f"fingerprint: {FINGERPRINT_MEANING[job.fingerprint]}",
        f"intensity: {report.intensity}",
    ]
    if result.steady.rows:
        lines.append(f"speed: {result.steady_rows_per_second:.1f} images/s steady; time split: "
                     f"{result.steady.times.summary()}")
    return lines + _problem_lines(report)


def _problem_lines(report: ExtractReport) -> list[str]:
    return (
        _listed(f"{len(report.failed)} rows could not be read and are marked failed in the store:", report.failed)
        + _listed(f"{len(report.quarantined)} inputs were quarantined before extraction (not in the store):",
                  report.quarantined)
    )


def _up_to_date(path: Path, job: ExtractJob, quarantined: list[str], echo: Callable[[str], None]) -> ExtractReport:
    """The report of an extraction with nothing to do (also for a read-only cache)."""
    from featx.cache.store import FeatureStore

    store = FeatureStore.open(path)
    report = ExtractReport(path=path, key=store.key, n_rows=store.n_rows, reused=True,
                           failed=_failed_rows(store.failures()), quarantined=quarantined,
                           intensity=intensity_rule(store.preprocessing))
    report.lines = [f"store: {path}", f"cache key: {store.key}  ({store.n_rows} rows, up to date)",
                    f"intensity: {report.intensity}"]
    if job.block_rows is not None and job.block_rows != store.block_rows:
        report.lines.append(f"note: --block-rows {job.block_rows} ignored: the store exists with "
                            f"{store.block_rows} rows per block")
    report.lines += _problem_lines(report)
    for line in report.lines:
        echo(line)
    return report


def pixel_summary(pixels: Any) -> list[str]:
    """One line per pixel store used: where, and whether it was decoded now or reused."""
    lines = []
    for build in pixels.builds.values():
        if build.reused:
            state = "up to date"
        else:
            rate = f"{build.images_per_second:.1f} images/s, {build.workers} processes"
            state = f"decoded {build.rows_decoded} images ({rate})"
            if build.rows_reused:
                state += f", {build.rows_reused} unchanged images copied"
        lines.append(f"pixels: {build.path} ({state})")
        if build.n_failed:
            lines.append(f"  {build.n_failed} images could not be decoded (marked failed, not read again)")
    return lines

"""A whole study in one YAML file, read into typed jobs: datasets x backbones x sizes x options.

```yaml
cache: cache                      # relative paths are relative to this file
datasets:
  - adapter: nih_chestxray14      # `featx datasets`
    root: data/nih
  - adapter: csv
    root: data/lab/labels.csv
    name: lab_xray                # the dataset's name in the cache (csv: default the CSV's stem)
    options: {modality: xray}     # adapter options (--option key=value)
    extract: {patch-tokens: true} # per-dataset `featx extract` options
    probe: false                  # per-dataset `featx probe` options, or false: extract only
backbones: [dinov2_vitl14, {name: densenet201, weights: weights/densenet201.pth}]
sizes: [224, 448]
extract: {device: cuda, batch-size: 128, workers: 8}   # any `featx extract` option, without the --
probe: {out: results.jsonl, setting: [knn, linear]}    # `featx probe` options
```

Each (dataset, backbone, size) becomes one :class:`ExtractJob` and, unless ``probe: false``, one
:class:`ProbeJob` that picks the store by dataset, backbone and size: the same typed jobs `featx
extract` and `featx probe` build from their flags. :func:`dump_study` writes a study back as an
explicit list of jobs (``jobs: [{extract: {...}, probe: {...}}]``), which :func:`load_study` reads too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from featx.datasets.index import DatasetError
from featx.jobs.fields import JobError, from_options, to_options
from featx.pipeline.job import ExtractJob
from featx.probes.job import ProbeJob

_STUDY_KEYS = {"cache", "datasets", "backbones", "sizes", "extract", "probe", "jobs"}
_DATASET_KEYS = {"adapter", "root", "name", "options", "extract", "probe"}
_BACKBONE_KEYS = {"name", "weights", "extract"}
_PATH_OPTIONS = ("root", "weights", "cache", "out", "save-masks")


class StudyError(DatasetError):
    """The study file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class StudyJob:
    """One store of the study: the extraction that builds it and the probe run on it (None: not probed)."""

    extract: ExtractJob
    probe: ProbeJob | None = None

    @property
    def dataset(self) -> str:
        """The dataset's name in the cache (csv: the CSV's stem unless named)."""
        job = self.extract
        return job.name or (job.root.stem if job.dataset == "csv" else job.dataset)

    @property
    def backbone(self) -> str:
        return self.extract.backbone

    @property
    def size(self) -> int:
        return self.extract.size


@dataclass(frozen=True)
class Study:
    path: Path
    cache: Path
    jobs: list[StudyJob]

    @property
    def out(self) -> Path | None:
        """The results file every probe job of the study appends to."""
        return next((job.probe.out for job in self.jobs if job.probe is not None and job.probe.out), None)


def _mapping(value: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    """``value`` as a mapping whose keys are among ``allowed`` (None: any, checked by the job type)."""
    if not isinstance(value, dict):
        raise StudyError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise StudyError(f"{where}: unknown keys {unknown}; expected some of {sorted(allowed)}")
    return value


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study file") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML ({exc})") from None
    return _mapping(raw, str(path), _STUDY_KEYS)


def _job(job_type: type, options: dict[str, Any], here: Path, where: str) -> Any:
    """A typed job from YAML options, paths relative to the study file; problems name the entry."""
    local = {key: str((here / str(value)).expanduser().resolve())
             if key.replace("_", "-") in _PATH_OPTIONS and value is not None else value
             for key, value in options.items()}
    try:
        return from_options(job_type, local, where)
    except JobError as error:
        raise StudyError(str(error)) from None


def load_study(path: str | Path) -> Study:
    """Read and check ``path``; every problem is one sentence naming the file and the entry."""
    path = Path(path).expanduser().resolve()
    study = _read(path)
    if "jobs" in study:
        return _explicit(path, study)
    for required in ("cache", "datasets", "backbones"):
        if not study.get(required):
            raise StudyError(f"{path}: needs {required!r}")
    here = path.parent
    cache = (here / str(study["cache"])).expanduser().resolve()
    sizes = study.get("sizes") or [224]
    if not all(isinstance(s, int) and s > 0 for s in sizes):
        raise StudyError(f"{path}: sizes must be positive integers, got {sizes}")
    common = _mapping(study.get("extract") or {}, f"{path}: extract")
    probe = _mapping(study.get("probe") or {}, f"{path}: probe")
    jobs: list[StudyJob] = []
    for i, entry in enumerate(study["datasets"]):
        dataset = _mapping(entry, f"{path}: datasets[{i}]", _DATASET_KEYS)
        if "adapter" not in dataset or "root" not in dataset:
            raise StudyError(f"{path}: datasets[{i}] needs 'adapter' and 'root'")
        own_probe = dataset.get("probe", {})
        for j, item in enumerate(study["backbones"]):
            backbone = _mapping({"name": item} if isinstance(item, str) else item, f"{path}: backbones[{j}]",
                                _BACKBONE_KEYS)
            for size in sizes:
                options = {**common, **(backbone.get("extract") or {}), **(dataset.get("extract") or {}),
                           "dataset": dataset["adapter"], "root": dataset["root"], "backbone": backbone["name"],
                           "size": size, "cache": str(cache), "name": dataset.get("name"),
                           "weights": backbone.get("weights"),
                           "options": _mapping(dataset.get("options") or {}, f"{path}: datasets[{i}].options")}
                extract = _job(ExtractJob, options, here, f"{path}: datasets[{i}] x backbones[{j}]")
                job = StudyJob(extract)
                if own_probe is not False:
                    picked = {**probe, **_mapping(own_probe or {}, f"{path}: datasets[{i}].probe"),
                              "cache": str(cache), "dataset": [job.dataset], "backbone": [backbone["name"]],
                              "size": size}
                    job = StudyJob(extract, _job(ProbeJob, picked, here, f"{path}: datasets[{i}].probe"))
                jobs.append(job)
    return Study(path=path, cache=cache, jobs=jobs)


def _explicit(path: Path, study: dict[str, Any]) -> Study:
    """A study written as a list of jobs (what :func:`dump_study` writes)."""
    here = path.parent
    jobs = []
    for i, entry in enumerate(study.get("jobs") or []):
        entry = _mapping(entry, f"{path}: jobs[{i}]", {"extract", "probe"})
        extract = _job(ExtractJob, _mapping(entry.get("extract"), f"{path}: jobs[{i}].extract"), here,
                       f"{path}: jobs[{i}].extract")
        probe = entry.get("probe", False)
        jobs.append(StudyJob(extract, None if probe is False else
                             _job(ProbeJob, _mapping(probe, f"{path}: jobs[{i}].probe"), here,
                                  f"{path}: jobs[{i}].probe")))
    cache = (here / str(study.get("cache", "cache"))).expanduser().resolve()
    return Study(path=path, cache=cache, jobs=jobs)


def dump_study(study: Study, path: str | Path) -> Path:
    """Write ``study`` as an explicit list of jobs (absolute paths) that :func:`load_study` reads back."""
    jobs = [{"extract": to_options(job.extract, all_fields=True),
             "probe": False if job.probe is None else to_options(job.probe)} for job in study.jobs]
    path = Path(path)
    path.write_text(yaml.safe_dump({"cache": str(study.cache), "jobs": jobs}, sort_keys=False))
    return path

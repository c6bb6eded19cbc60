"""A whole study in one YAML file: datasets x backbones x sizes x options (`--config study.yaml`).

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

Each (dataset, backbone, size) is one `featx extract` run with exactly the arguments a
user would type, so a study run and a hand run build the same store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from featx.datasets.index import DatasetError

_STUDY_KEYS = {"cache", "datasets", "backbones", "sizes", "extract", "probe"}
_DATASET_KEYS = {"adapter", "root", "name", "options", "extract", "probe"}
_BACKBONE_KEYS = {"name", "weights", "extract"}


class StudyError(DatasetError):
    """The study file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class ExtractJob:
    """One store of the study: what it is, and the `featx extract` arguments that build it."""

    dataset: str  # the dataset's name in the cache
    backbone: str
    size: int
    args: list[str]
    probe: dict[str, Any] | None = None  # `featx probe` options for this store; None: not probed


@dataclass(frozen=True)
class Study:
    path: Path
    cache: Path
    jobs: list[ExtractJob]
    probe: dict[str, Any]


def option_args(options: dict[str, Any]) -> list[str]:
    """Command-line flags for ``{option: value}``: True -> ``--flag``, lists repeat the flag."""
    args: list[str] = []
    for option, value in options.items():
        flag = f"--{option}"
        if value is True:
            args.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def _mapping(value: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    """``value`` as a mapping whose keys are among ``allowed`` (None: any, checked by the command later)."""
    if not isinstance(value, dict):
        raise StudyError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        raise StudyError(f"{where}: unknown keys {unknown}; expected some of {sorted(allowed)}")
    return value


def load_study(path: str | Path) -> Study:
    """Read and check ``path``; every problem is one sentence naming the file and the entry."""
    path = Path(path).expanduser().resolve()
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study file") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML ({exc})") from None
    study = _mapping(raw, str(path), _STUDY_KEYS)
    for required in ("cache", "datasets", "backbones"):
        if not study.get(required):
            raise StudyError(f"{path}: needs {required!r}")
    here = path.parent

    def local(value: Any) -> str:
        return str((here / str(value)).expanduser().resolve())

    cache = Path(local(study["cache"]))
    sizes = study.get("sizes") or [224]
    if not all(isinstance(s, int) and s > 0 for s in sizes):
        raise StudyError(f"{path}: sizes must be positive integers, got {sizes}")
    common = _mapping(study.get("extract") or {}, f"{path}: extract")
    jobs: list[ExtractJob] = []
    for i, entry in enumerate(study["datasets"]):
        dataset = _mapping(entry, f"{path}: datasets[{i}]", _DATASET_KEYS)
        if "adapter" not in dataset or "root" not in dataset:
            raise StudyError(f"{path}: datasets[{i}] needs 'adapter' and 'root'")
        name = dataset.get("name") or (
            Path(str(dataset["root"])).stem if dataset["adapter"] == "csv" else dataset["adapter"]
        )
        adapter_options = _mapping(dataset.get("options") or {}, f"{path}: datasets[{i}].options")
        for j, item in enumerate(study["backbones"]):
            backbone = _mapping({"name": item} if isinstance(item, str) else item, f"{path}: backbones[{j}]",
                                _BACKBONE_KEYS)
            for size in sizes:
                options = {**common, **(backbone.get("extract") or {}), **(dataset.get("extract") or {})}
                args = ["--dataset", str(dataset["adapter"]), "--root", local(dataset["root"]),
                        "--backbone", str(backbone["name"]), "--size", str(size), "--cache", str(cache)]
                if dataset.get("name"):
                    args += ["--name", str(dataset["name"])]
                if backbone.get("weights"):
                    args += ["--weights", local(backbone["weights"])]
                args += option_args(options)
                args += [arg for k, v in adapter_options.items() for arg in ("--option", f"{k}={v}")]
                jobs.append(ExtractJob(dataset=str(name), backbone=str(backbone["name"]), size=int(size), args=args,
                                       probe=_probe_options(dataset, f"{path}: datasets[{i}].probe")))
    probe = _mapping(study.get("probe") or {}, f"{path}: probe")
    if "out" in probe:
        probe = {**probe, "out": local(probe["out"])}
    return Study(path=path, cache=cache, jobs=jobs, probe=probe)


def _probe_options(dataset: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A dataset's own probe options (merged over the study's later), or None for ``probe: false``."""
    value = dataset.get("probe", {})
    if value is False:
        return None
    return _mapping(value or {}, where)


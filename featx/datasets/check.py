"""Validate a download without extracting: what `featx datasets check` prints."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featx.datasets.ct_hint import ct_window_warning
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.preprocess import PreprocessConfig
from featx.datasets.readers import load_sample
from featx.datasets.registry import build_index
from featx.datasets.splits import split_summary


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["uncertainty=u_ones", "slice_axis=2", "frontal_only=false"]`` -> typed keyword options."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise DatasetError(f"option {pair!r} must look like key=value")
        key, raw = pair.split("=", 1)
        key, raw = key.strip().replace("-", "_"), raw.strip()
        lowered = raw.lower()
        if lowered in ("true", "yes", "on"):
            value: Any = True
        elif lowered in ("false", "no", "off"):
            value = False
        elif lowered in ("none", "null", ""):
            value = None
        else:
            try:
                value = ast.literal_eval(raw)
                if not isinstance(value, (int, float)):
                    value = raw
            except (ValueError, SyntaxError):
                value = raw
        options[key] = value
    return options


@dataclass
class CheckReport:
    """The outcome of checking one dataset folder."""

    index: SampleIndex
    decoded: int = 0
    decode_failures: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        return list(self.index.problems) + list(self.decode_failures)

    def to_dict(self) -> dict[str, Any]:
        summary = split_summary(self.index)
        return {
            "dataset": self.index.dataset,
            "task": self.index.task,
            "modality": self.index.modality,
            "label_names": list(self.index.label_names),
            "metadata_columns": [str(c) for c in self.index.metadata.columns],
            "samples": len(self.index),
            "patients": int(self.index.table["patient_id"].nunique()),
            "volumes": int(self.index.table.loc[self.index.table["volume_id"] != "", "volume_id"].nunique()),
            "with_masks": int((self.index.table["mask_source"] != "").sum()),
            "uncertain_labels": int(np.isnan(self.index.labels).sum()),
            "splits": summary.to_dict("records"),
            "decoded": self.decoded,
            "problems": [{"source": p.source, "message": p.message} for p in self.problems],
            "warnings": list(self.warnings),
        }

    def format(self, max_problems: int = 20) -> str:
        info = self.to_dict()
        lines = [
            f"{info['dataset']}: {info['task']}, {info['modality']}, {info['samples']} samples, "
            f"{info['patients']} patients" + (f", {info['volumes']} volumes" if info["volumes"] else "")
            + (f", {info['with_masks']} with masks" if info["with_masks"] else ""),
            f"classes: {', '.join(info['label_names'])}",
        ]
        if info["metadata_columns"]:
            lines.append(f"metadata columns (not labels): {', '.join(info['metadata_columns'])}")
        lines += self.warnings
        if info["uncertain_labels"]:
            lines.append(f"labels marked unknown (NaN, ignored): {info['uncertain_labels']}")
        lines.append("")
        lines.append(split_summary(self.index).to_string(index=False))
        if self.decoded:
            lines.append(f"\ndecoded {self.decoded} samples, {len(self.decode_failures)} failed")
        problems = self.problems
        if problems:
            lines.append(f"\n{len(problems)} problem(s) (quarantined; the rest is usable):")
            lines += [f"  {p}" for p in problems[:max_problems]]
            if len(problems) > max_problems:
                lines.append(f"  ... and {len(problems) - max_problems} more")
        else:
            lines.append("\nno problems found")
        return "\n".join(lines)


def check_dataset(name: str, root: str | Path, *, decode: int = 0, **options: Any) -> CheckReport:
    """Index ``root`` with adapter ``name``; with ``decode`` > 0, also decode up to that many
    samples (spread evenly over the index; -1 = all) and report those that fail."""
    index = build_index(name, root, **options)
    report = CheckReport(index)
    if name == "csv":
        intensity = PreprocessConfig.for_modality(index.modality, 224).intensity
        warning = ct_window_warning(index, intensity, root)
        report.warnings += [warning] if warning else []
    if decode:
        n = len(index) if decode < 0 else min(int(decode), len(index))
        rows = np.unique(np.linspace(0, len(index) - 1, n).round().astype(int)) if n else []
        records = index.table.to_dict("records")
        for i in rows:
            try:
                load_sample(records[int(i)])
            except DatasetError as exc:
                report.decode_failures.append(Problem(records[int(i)]["source"], str(exc)))
            report.decoded += 1
    return report

"""Per-sample test predictions kept beside the results file, so any two scorings can be paired later.

Each test scoring writes one compressed ``<id>.npz`` into the folder ``RESULTS.jsonl.predictions/``
next to its results file; ``id`` is a hash of its content (an identical re-run writes the same
file). Every test record of that scoring carries ``predictions: {id, test_set, kind, probabilities}``.
The file holds the test units' ids and patients, and

* classification (``kind: scores``): the labels ``(n, C)`` and the class scores as float16;
* segmentation (``kind: unit_counts``): per test unit (image or volume) and foreground class
  the TP, FP and FN pixel counts (every per-unit and pooled Dice / Jaccard follows from them);

plus the units' metadata columns (for subgroups). ``test_set`` is a hash of the unit ids,
patients and labels (class names for segmentation): two records with the same ``test_set``
were scored on the same test samples, whatever day or machine made them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featx.evaluation.features import ProbeError

SUFFIX = ".predictions"


class PredictionsError(ProbeError):
    """A record's kept predictions cannot be found or read."""


@dataclass
class TestPredictions:
    """The kept predictions of one test scoring."""

    __test__ = False

    kind: str  # "scores" or "unit_counts"
    ids: np.ndarray
    patients: np.ndarray
    class_names: list[str]
    labels: np.ndarray | None = None  # (n, C) float32, classification
    scores: np.ndarray | None = None  # (n, C) float16, classification
    counts: np.ndarray | None = None  # (units, C-1, 3) int64 TP/FP/FN, segmentation
    metadata: pd.DataFrame | None = None

    @property
    def test_set(self) -> str:
        """A hash of what makes the test set: unit ids, patients, labels (or class names)."""
        digest = hashlib.sha256()
        for array in (self.ids, self.patients):
            digest.update("\x1f".join(np.asarray(array).astype(str).tolist()).encode() + b"\x1e")
        if self.labels is not None:
            digest.update(np.ascontiguousarray(np.nan_to_num(self.labels.astype(np.float32), nan=-1.0)).tobytes())
        digest.update("\x1f".join(self.class_names).encode())
        return f"{self.kind}:{digest.hexdigest()[:16]}"


def sidecar(results: str | Path) -> Path:
    """The predictions folder of a results file: ``RESULTS.jsonl`` -> ``RESULTS.jsonl.predictions/``."""
    results = Path(results)
    return results.with_name(results.name + SUFFIX)


def save(results: str | Path, predictions: TestPredictions, *, probabilities: bool) -> dict[str, Any]:
    """Write ``predictions`` beside ``results``; returns the ``predictions`` field of its records.

    An OSError (a full disk, a read-only folder) leaves no partial file and is the caller's to report.
    """
    folder = sidecar(results)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "ids": np.asarray(predictions.ids).astype(str), "patients": np.asarray(predictions.patients).astype(str),
        "class_names": np.asarray(predictions.class_names, dtype=str),
    }
    if predictions.labels is not None:
        arrays["labels"] = np.asarray(predictions.labels, dtype=np.float32)
        arrays["scores"] = np.asarray(predictions.scores, dtype=np.float16)
    if predictions.counts is not None:
        arrays["counts"] = np.asarray(predictions.counts, dtype=np.int64)
    if predictions.metadata is not None and len(predictions.metadata.columns):
        arrays["meta_columns"] = np.asarray([str(c) for c in predictions.metadata.columns], dtype=str)
        arrays["meta_values"] = predictions.metadata.astype(str).to_numpy().astype(str)
    digest = hashlib.sha256(predictions.kind.encode())
    for name in sorted(arrays):  # content-addressed: the same predictions, the same file, whichever run wrote them
        digest.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
    pid = digest.hexdigest()[:16]
    path = folder / f"{pid}.npz"
    partial = folder / f"{pid}.npz.{os.getpid()}.partial"
    try:  # written whole or not at all
        with partial.open("wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return {"id": pid, "test_set": predictions.test_set, "kind": predictions.kind, "probabilities": bool(probabilities)}


def path_of(record: dict[str, Any], results: str | Path) -> Path:
    """The file holding ``record``'s kept predictions, in the predictions folder of its ``results`` file."""
    return sidecar(results) / f"{record['predictions']['id']}.npz"


def load(record: dict[str, Any], results: str | Path) -> TestPredictions:
    """The kept predictions of ``record``, read from beside its ``results`` file."""
    field = record.get("predictions")
    who = f"{record.get('backbone')} / {record.get('setting')} on {record.get('dataset')}"
    if not isinstance(field, dict) or "id" not in field:
        raise PredictionsError(f"{who}: the record keeps no test predictions (made before featx kept them); re-run its probe")
    path = path_of(record, results)
    if not path.is_file():
        raise PredictionsError(f"{who}: its predictions file {path} is missing; keep the folder {path.parent.name}/ beside the results file")
    with np.load(path, allow_pickle=False) as data:
        meta = None
        if "meta_columns" in data:
            meta = pd.DataFrame(data["meta_values"], columns=data["meta_columns"].tolist())
        return TestPredictions(
            kind=str(field.get("kind", "scores")), ids=data["ids"], patients=data["patients"],
            class_names=data["class_names"].tolist(),
            labels=data.get("labels"),
            scores=data["scores"].astype(np.float64) if "scores" in data else None,
            counts=data.get("counts"), metadata=meta,
        )


def unit_counts(counts: np.ndarray, units: np.ndarray, patients: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row TP/FP/FN counts summed per unit: ``(unit ids, unit patients, (U, C-1, 3) counts)`` in first-seen order."""
    units = np.asarray(units).astype(str)
    names, first, codes = np.unique(units, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # first-seen order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    out = np.zeros((len(names), counts.shape[1], 3), dtype=np.int64)
    np.add.at(out, rank[codes], counts)
    return names[order], np.asarray(patients).astype(str)[first[order]], out

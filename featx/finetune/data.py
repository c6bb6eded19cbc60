"""Pixels for fine-tuning: a sample index decoded once into memory, and its sealed splits.

:func:`load_pixels` is the only place the fine-tuning wing reads images. Today it runs the
extraction pipeline's reader (:class:`featx.pipeline.reader.SampleDataset`: dataset readers,
intensity rule, resize, uint8) over every row once; when a pixel cache exists it is the one
function to point at it. A row that cannot be decoded is a named failed row, left out of
training and scoring; the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from featx.datasets.index import SampleIndex
from featx.evaluation.features import ProbeData
from featx.evaluation.selection import Splits
from featx.finetune.config import FinetuneError
from featx.pipeline.preprocess import PreprocessConfig
from featx.pipeline.reader import SampleDataset


@dataclass
class Pixels:
    """Decoded uint8 inputs ``(N, 3, S, S)`` of the readable rows, with their index rows."""

    images: torch.Tensor
    masks: torch.Tensor | None  # (N, S, S) uint8 class ids, segmentation only
    labels: np.ndarray  # (N, C) float32 (classification); (N, 0) for segmentation
    patients: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    failures: list[str]  # "sample_id: error" of rows that could not be decoded

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def load_pixels(index: SampleIndex, preprocess: PreprocessConfig, *, workers: int = 0) -> Pixels:
    """Decode every sample of ``index`` once (through the pipeline's reader) into memory."""
    with_masks = index.task == "segmentation"
    dataset = SampleDataset(index.table, preprocess, with_masks=with_masks)
    loader = DataLoader(dataset, batch_size=64, num_workers=workers, collate_fn=list)
    size = preprocess.size
    images = torch.empty((len(dataset), 3, size, size), dtype=torch.uint8)
    masks = torch.empty((len(dataset), size, size), dtype=torch.uint8) if with_masks else None
    ok = np.zeros(len(dataset), dtype=bool)
    failures = []
    ids = index.table["sample_id"].to_numpy().astype(str)
    for batch in loader:
        for item in batch:
            row = int(item["row"])
            if item["error"]:
                failures.append(f"{ids[row]}: {item['error']}")
                continue
            ok[row] = True
            images[row] = item["pixels"]
            if masks is not None:
                masks[row] = item["mask"]
    keep = torch.from_numpy(np.flatnonzero(ok))
    return Pixels(
        images=images[keep],
        masks=masks[keep] if masks is not None else None,
        labels=index.labels[ok],
        patients=index.table["patient_id"].to_numpy().astype(str)[ok],
        split=index.table["split"].to_numpy().astype(str)[ok],
        ids=ids[ok],
        failures=failures,
    )


def require_splits(split: np.ndarray, dataset: str, what: str = "samples") -> None:
    """Refuse, before any training, rows without train, validation or test members."""
    present = set(np.asarray(split).astype(str))
    missing = [name for name in ("train", "val", "test") if name not in present]
    if missing:
        need = "a validation split (model choice and early stopping use it; featx never selects on test)" if "val" in missing else "train, val and test rows"
        raise FinetuneError(
            f"{dataset}: fine-tuning needs {need}, and the {what} have no {', '.join(missing)} rows; "
            "give the dataset a patient-level train/val/test split (e.g. --option split_file=...)"
        )


def sealed_splits(pixels: Pixels, index: SampleIndex) -> Splits:
    """The probes' sealed-test :class:`Splits` over these rows (no feature blocks: rows and labels only)."""
    data = ProbeData(
        blocks={},
        layers=[],
        labels=pixels.labels,
        patients=pixels.patients,
        split=pixels.split,
        ids=pixels.ids,
        label_names=list(index.label_names),
        task=index.task,
        dataset=index.dataset,
    )
    return Splits(data)

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
    """Decoded uint8 inputs ``(N, C, S, S)`` of the readable rows, with their index rows.

    ``C`` is 1 when every image is grey (the reader's 3 replicated planes are kept once, a third
    of the memory; :func:`as_rgb` replicates them again per batch), else 3.
    """

    images: torch.Tensor
    masks: torch.Tensor | None  # (N, S, S) uint8 class ids, segmentation only
    labels: np.ndarray  # (N, C) float32 (classification); (N, 0) for segmentation
    patients: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    volumes: np.ndarray  # volume id of each row ("" for 2D samples)
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
    images = torch.empty((len(dataset), 1, size, size), dtype=torch.uint8)
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
            pixels = item["pixels"]
            if images.shape[1] == 1 and not (torch.equal(pixels[0], pixels[1]) and torch.equal(pixels[0], pixels[2])):
                images = images.expand(-1, 3, -1, -1).clone()  # a colour image: keep all three planes
            images[row] = pixels[: images.shape[1]]
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
        volumes=index.table["volume_id"].to_numpy().astype(str)[ok],
        failures=failures,
    )


def as_rgb(pixels: torch.Tensor) -> torch.Tensor:
    """A batch ``(B, 1 or 3, S, S)`` as 3 channels (grey planes replicated, no copy)."""
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


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


@dataclass
class Units:
    """What is scored: 2D images, or whole volumes (a 3D dataset's slices are trained on one by one).

    ``splits`` holds one row per unit with the test labels sealed; ``members[u]`` are the pixel
    rows of unit ``u`` (one image, or a volume's readable slices).
    """

    splits: Splits
    members: list[np.ndarray]
    level: str  # "sample" or "volume"

    def pixel_rows(self, units: np.ndarray) -> np.ndarray:
        """The pixel rows of some units, concatenated in unit order."""
        return np.concatenate([self.members[u] for u in units]) if len(units) else np.zeros(0, dtype=np.int64)


def sealed_units(pixels: Pixels, index: SampleIndex) -> Units:
    """The probes' sealed-test :class:`Splits` over the units (no feature blocks: rows and labels only).

    As in the probes, a volume is one unit (its slices share its label, patient and split).
    """
    keys = np.where(pixels.volumes == "", "img:" + pixels.ids, "vol:" + pixels.volumes)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)  # units in the order they first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    unit_of_row = rank[inverse]
    members = [np.flatnonzero(unit_of_row == u) for u in range(order.size)]
    heads = first[order]
    data = ProbeData(
        blocks={},
        layers=[],
        labels=pixels.labels[heads],
        patients=pixels.patients[heads],
        split=pixels.split[heads],
        ids=keys[heads],
        label_names=list(index.label_names),
        task=index.task,
        level="volume" if (pixels.volumes != "").any() else "sample",
        dataset=index.dataset,
    )
    return Units(splits=Splits(data), members=members, level=data.level)

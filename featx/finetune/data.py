"""Pixels for fine-tuning: a sample index decoded once into memory, and its sealed splits.

:func:`load_pixels` is the only place the fine-tuning wing reads images. Given a cache root,
it reads the dataset's pixel store there (:class:`featx.cache.pixels.PixelStore`, the one
`featx extract` builds) when one holds exactly these samples under this preprocessing;
otherwise it runs the extraction pipeline's reader (:class:`featx.pipeline.reader.SampleDataset`:
dataset readers, intensity rule, resize, uint8) over every row once. Both give the same uint8
planes. A row that cannot be decoded is a named failed row, left out of training and scoring;
the run goes on. Masks of test rows are sealed (:class:`SealedMasks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from featx.cache.pixels import PixelStore
from featx.cache.store import StoreError
from featx.datasets.index import SampleIndex
from featx.datasets.preprocess import PreprocessConfig
from featx.datasets.stamps import row_stamps
from featx.evaluation.features import ProbeData
from featx.evaluation.selection import SealedSplitError, Splits
from featx.finetune.config import FinetuneError
from featx.pipeline.reader import SampleDataset


class SealedMasks:
    """Class-id masks ``(N, S, S)`` uint8 of the pixel rows; test rows only for the one test scoring."""

    def __init__(self, masks: torch.Tensor, split: np.ndarray) -> None:
        self._masks = masks
        self._test = torch.from_numpy(np.asarray(split) == "test")

    def read(self, rows: torch.Tensor | np.ndarray, *, sealed_ok: bool = False) -> torch.Tensor:
        """The masks of ``rows``; test rows raise unless ``sealed_ok`` (the scorer of ``score_test_once``)."""
        rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        if not sealed_ok and bool(self._test[rows].any()):
            raise SealedSplitError("test masks are sealed: they are read only by Splits.score_test_once")
        return self._masks[rows]


@dataclass
class Pixels:
    """Decoded uint8 inputs ``(N, C, S, S)`` of the readable rows, with their index rows.

    ``C`` is 1 when every image is grey (the reader's 3 replicated planes are kept once, a third
    of the memory; :func:`as_rgb` replicates them again per batch), else 3.
    """

    images: torch.Tensor
    masks: SealedMasks | None  # segmentation only
    labels: np.ndarray  # (N, C) float32 (classification); (N, 0) for segmentation
    patients: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    volumes: np.ndarray  # volume id of each row ("" for 2D samples)
    slices: np.ndarray  # slice index of each row within its volume (0 for 2D samples)
    failures: list[str]  # "sample_id: error" of rows that could not be decoded
    source: dict[str, str | None] = field(default_factory=dict)  # pixel_source, pixel_store, pixel_note

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    @property
    def unit_ids(self) -> np.ndarray:
        """Per row, the unit a segmentation is scored in: its volume, or itself for a 2D image."""
        return np.where(self.volumes == "", self.ids, self.volumes)

    @property
    def unit_level(self) -> str:
        """What a segmentation unit is: ``volume`` (3D) or ``image`` (2D), as the probes say."""
        return "volume" if (self.volumes != "").any() else "image"

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)


def find_pixel_store(index: SampleIndex, preprocess: PreprocessConfig, cache_root: str | Path,
                     fingerprint: str = "stat") -> tuple[PixelStore | None, str]:
    """The published 8-bit pixel store under ``cache_root`` holding exactly ``index`` under
    ``preprocess`` (same samples, unchanged files by ``fingerprint``), or None; and why."""
    try:
        store = PixelStore.open_key(cache_root, index.dataset, preprocess.to_dict())
    except StoreError as error:
        return None, str(error)
    if not store.matches_index(index, row_stamps(index.table, fingerprint)):
        return None, (f"{store.path} holds other samples or older files than the dataset (stamps by "
                      f"--fingerprint {fingerprint}); `featx extract --cache {cache_root}` at this size updates it")
    return store, str(store.path)


def load_pixels(index: SampleIndex, preprocess: PreprocessConfig, *, workers: int = 0, cache: str | Path | None = None,
                fingerprint: str = "stat") -> Pixels:
    """Every sample of ``index`` decoded once into memory: from the matching pixel store under
    ``cache`` where there is one, else through the pipeline's reader (``source`` says which)."""
    store, note = find_pixel_store(index, preprocess, cache, fingerprint) if cache is not None else (None, "no --cache given")
    if store is not None:
        return _from_pixel_store(store, index)
    pixels = _from_readers(index, preprocess, workers)
    pixels.source["pixel_note"] = note
    return pixels


def _pixels(index: SampleIndex, ok: np.ndarray, images: torch.Tensor, masks: torch.Tensor | None, failures: list[str],
            source: dict[str, str | None]) -> Pixels:
    """The readable rows (``ok``) of decoded arrays over every row of ``index``; mask class ids checked."""
    table = index.table
    keep = torch.from_numpy(np.flatnonzero(ok))
    ids = table["sample_id"].to_numpy().astype(str)[ok]
    split = table["split"].to_numpy().astype(str)[ok]
    sealed = None
    if masks is not None:
        masks = masks[keep]
        n_classes = len(index.label_names)
        if masks.numel() and int(masks.max()) >= n_classes:
            bad = int(torch.nonzero(masks.flatten(1).amax(1) >= n_classes)[0])
            raise FinetuneError(
                f"{index.dataset}: the mask of {ids[bad]} holds class id {int(masks[bad].max())} but the dataset has "
                f"{n_classes} classes {list(index.label_names)}; fix the mask or the dataset's label list"
            )
        sealed = SealedMasks(masks, split)
    return Pixels(
        images=images[keep],
        masks=sealed,
        labels=index.labels[ok],
        patients=table["patient_id"].to_numpy().astype(str)[ok],
        split=split,
        ids=ids,
        volumes=table["volume_id"].to_numpy().astype(str)[ok],
        slices=table["slice_index"].to_numpy().astype(np.int64)[ok],
        failures=failures,
        source=source,
    )


def _from_pixel_store(store: PixelStore, index: SampleIndex) -> Pixels:
    """Read a pixel store's images (and masks) block by block: whole shards, no decoding."""
    size, n = store.size, store.n_rows
    colour = store.has_colour  # colour images keep their three planes, as from the readers
    images = torch.empty((n, 3 if colour else 1, size, size), dtype=torch.uint8)
    masks = torch.empty((n, size, size), dtype=torch.uint8) if index.task == "segmentation" else None
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        images[rows] = torch.from_numpy(store.read_colour(rows) if colour else store.read_images(rows)[:, None])
        if masks is not None:
            masks[rows] = torch.from_numpy(store.read_masks(rows))
    ids = index.table["sample_id"].to_numpy().astype(str)
    errors = store.errors
    failures = [f"{ids[row]}: {errors[row]}" for row in np.flatnonzero(store.failed)]
    return _pixels(index, store.valid, images, masks, failures,
                   {"pixel_source": "pixel_store", "pixel_store": str(store.path), "pixel_note": None})


def _from_readers(index: SampleIndex, preprocess: PreprocessConfig, workers: int) -> Pixels:
    """Decode every sample once through the pipeline's reader (dataset readers, intensity, resize, uint8)."""
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
    return _pixels(index, ok, images, masks, failures, {"pixel_source": "readers", "pixel_store": None})


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
    rows of unit ``u`` (one image, or a volume's readable slices). ``data`` is the same rows
    unsealed, for what is computed from the one test scoring after it (calibration, subgroups).
    """

    splits: Splits
    members: list[np.ndarray]
    level: str  # "sample" or "volume"
    data: ProbeData

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
    return Units(splits=Splits(data), members=members, level=data.level, data=data)


def sealed_rows(pixels: Pixels, index: SampleIndex) -> Splits:
    """The sealed-test :class:`Splits` over the pixel rows of a segmentation dataset.

    Slices are trained and predicted one by one (as the probes do); they are scored per unit
    (image or volume) from ``pixels.unit_ids``. The masks themselves are sealed in ``pixels.masks``.
    """
    data = ProbeData(
        blocks={}, layers=[], labels=np.zeros((pixels.n, 0), np.float32), patients=pixels.patients,
        split=pixels.split, ids=pixels.ids, label_names=[], task="segmentation", level=pixels.unit_level,
        dataset=index.dataset,
    )
    return Splits(data)

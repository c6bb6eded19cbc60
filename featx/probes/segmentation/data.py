"""What a segmentation decoder reads from a feature store: patch tokens, masks, the slice index.

:func:`open_segmentation` checks a store before anything is trained (a segmentation
dataset, patch tokens of the blocks a decoder needs, masks present) and returns a
:class:`SegmentationData`: the valid rows with their patient, split, volume and slice,
and readers for tokens and masks. :class:`StoreBatches` reads batches ahead in
background threads (rows straight from the shard files, featx.cache.shards) so training
rarely waits on the store; :class:`MemoryBatches` serves the same batches from tokens already in memory.

Masks of test rows are sealed: :meth:`SegmentationData.read_masks` refuses them unless
the caller is the one test scoring (``Splits.score_test_once(..., scorer=...)``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from featx.cache.store import FeatureStore

from featx.decoders.models import decoder_blocks
from featx.evaluation.features import ProbeData, ProbeError
from featx.evaluation.selection import SealedSplitError


def patch_layers(store: FeatureStore) -> list[str]:
    """Layers of ``store`` that carry patch tokens, shallow to deep."""
    return [layer for layer in store.layers if f"features/{layer}/patch" in store.group]


@dataclass
class SegmentationData:
    """The valid rows of one segmentation store and how to read their tokens and masks.

    Positions (0..n-1) index the valid rows; ``rows[p]`` is the store row of position p.
    """

    store: FeatureStore
    rows: np.ndarray
    sample_ids: np.ndarray
    patients: np.ndarray
    split: np.ndarray
    volume_ids: np.ndarray
    slice_index: np.ndarray
    slice_axis: np.ndarray
    sources: np.ndarray
    class_names: list[str]
    layers: list[str]  # layers holding patch tokens, shallow to deep
    dims: dict[str, int]
    grid: tuple[int, int]
    mask_size: int
    dataset: str
    n_invalid: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.rows.size)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_3d(self) -> bool:
        return bool((self.volume_ids != "").any())

    @property
    def level(self) -> str:
        """The unit a per-unit metric averages over: ``volume`` (3D) or ``image`` (2D)."""
        return "volume" if self.is_3d else "image"

    @property
    def unit_ids(self) -> np.ndarray:
        """Per position, the unit it belongs to (its volume, or itself for 2D images)."""
        return np.where(self.volume_ids == "", self.sample_ids, self.volume_ids)

    def positions(self, split: str) -> np.ndarray:
        return np.flatnonzero(np.isin(self.split, split.split("+")))

    def probe_data(self) -> ProbeData:
        """A feature-less :class:`ProbeData` of these rows, for the sealed :class:`Splits`."""
        return ProbeData(
            blocks={}, layers=list(self.layers), labels=np.zeros((self.n, 0), np.float32), patients=self.patients,
            split=self.split, ids=self.sample_ids, label_names=[], task="segmentation", level=self.level,
            dataset=self.dataset, provenance=dict(self.provenance), n_invalid=self.n_invalid,
        )

    def decoder_layers(self, setting: str) -> list[str]:
        """The layers ``setting``'s decoder reads, or a ProbeError saying how to extract them."""
        need = decoder_blocks(setting)
        if len(self.layers) < need:
            raise ProbeError(
                f"{self.dataset}: store {self.store.path} holds patch tokens of {len(self.layers)} block(s) "
                f"({self.layers}); {setting} needs the last {need}: re-extract with --patch-tokens --n-last {need}"
            )
        return self.layers[-need:]

    # ---- reading ---------------------------------------------------------------------------
    def read_tokens(self, positions: np.ndarray, layers: Sequence[str]) -> list[np.ndarray]:
        """Per layer, ``(n, h, w, D)`` patch tokens of ``positions`` (in that order), float16 as stored.

        They go to the device as they are and become float32 there (:func:`train.to_device`).
        """
        return [self.store.read_patch(layer, self.rows[positions], dtype=None) for layer in layers]

    def read_masks(self, positions: np.ndarray, *, sealed_ok: bool = False) -> np.ndarray:
        """``(n, S, S)`` uint8 class ids; test rows only for the one test scoring."""
        positions = np.asarray(positions)
        if not sealed_ok and (self.split[positions] == "test").any():
            raise SealedSplitError("test masks are sealed: they are read only by Splits.score_test_once")
        masks = self.store.read_masks(self.rows[positions])
        if masks.size and int(masks.max()) >= self.n_classes:
            bad = int(np.flatnonzero(masks.reshape(len(positions), -1).max(1) >= self.n_classes)[0])
            raise ProbeError(
                f"{self.dataset}: mask of {self.sample_ids[positions[bad]]} (store {self.store.path}) holds class id "
                f"{int(masks[bad].max())} but the dataset has {self.n_classes} classes {self.class_names}"
            )
        return masks


def open_segmentation(store: FeatureStore) -> SegmentationData:
    """Check a store can feed a segmentation decoder and describe its valid rows."""
    dataset = store.dataset
    if store.task != "segmentation":
        raise ProbeError(
            f"{dataset}: store {store.path} holds a {store.task!r} dataset; segmentation decoders need a "
            "segmentation dataset (masks), e.g. montgomery, msd or amos"
        )
    layers = patch_layers(store)
    if not layers:
        raise ProbeError(
            f"{dataset}: store {store.path} has no patch tokens; re-extract with --patch-tokens "
            "(and --n-last 5 for the U-Net decoder)"
        )
    if "masks" not in store.group:
        raise ProbeError(f"{dataset}: store {store.path} has no masks; re-extract it with this featx version")
    valid = np.asarray(store.valid, dtype=bool)
    if not valid.any():
        raise ProbeError(f"{dataset}: store {store.path} has no valid rows")
    rows = np.flatnonzero(valid)
    index = store.index.iloc[rows].reset_index(drop=True)
    h, w = store.patch_grid.get(layers[-1], store.group[f"features/{layers[-1]}/patch"].shape[1:3])
    return SegmentationData(
        store=store,
        rows=rows,
        sample_ids=index["sample_id"].to_numpy().astype(str),
        patients=index["patient_id"].to_numpy().astype(str),
        split=index["split"].to_numpy().astype(str),
        volume_ids=index["volume_id"].to_numpy().astype(str),
        slice_index=index["slice_index"].to_numpy().astype(np.int64),
        slice_axis=index["slice_axis"].to_numpy().astype(np.int64),
        sources=index["source"].to_numpy().astype(str),
        class_names=list(store.label_names),
        layers=layers,
        dims={layer: store.feature_dims[layer] for layer in layers},
        grid=(int(h), int(w)),
        mask_size=int(store.group["masks"].shape[1]),
        dataset=dataset,
        n_invalid=int((~valid).sum()),
        provenance=dict(store.provenance()),
    )


# ---- batches -----------------------------------------------------------------------------------
Batch = tuple[list[np.ndarray], np.ndarray | None, np.ndarray]  # tokens per layer, masks, positions


def batch_order(positions: np.ndarray, batch_size: int, seed: int | None) -> list[np.ndarray]:
    """Positions cut into batches, shuffled by ``seed`` (None: in order); each batch sorted for locality."""
    positions = np.asarray(positions)
    if seed is not None:
        positions = np.random.default_rng(seed).permutation(positions)
    return [np.sort(positions[i : i + batch_size]) for i in range(0, len(positions), batch_size)]


class StoreBatches:
    """Batches whose tokens are read from the store by ``workers`` threads, ``depth`` batches ahead.

    Masks are small beside the tokens (``S x S`` bytes against ``blocks x h x w x D x 2``)
    and zarr's cost is per chunk, so the masks of the positions a decoder trains on are
    read once (:meth:`preload_masks`, when they fit in ``mask_budget`` bytes) and the
    tokens stream from the store every epoch.
    """

    def __init__(self, data: SegmentationData, layers: Sequence[str], *, depth: int = 4, workers: int = 2,
                 mask_budget: int = 1 << 30) -> None:
        self.data = data
        self.layers = list(layers)
        self.depth = max(1, depth)
        self.workers = max(1, workers)
        self.mask_budget = mask_budget
        self._masks: dict[int, np.ndarray] = {}

    def preload_masks(self, positions: np.ndarray) -> None:
        """Keep the masks of ``positions`` (never test) in memory if they fit the budget."""
        positions = np.asarray([p for p in positions if int(p) not in self._masks], dtype=np.int64)
        if positions.size and positions.size * self.data.mask_size**2 <= self.mask_budget - len(self._masks) * self.data.mask_size**2:
            for p, mask in zip(positions, self.data.read_masks(positions)):
                self._masks[int(p)] = mask

    def _read_masks(self, positions: np.ndarray) -> np.ndarray:
        if all(int(p) in self._masks for p in positions):
            return np.stack([self._masks[int(p)] for p in positions])
        return self.data.read_masks(positions)

    def _read(self, positions: np.ndarray, with_masks: bool) -> Batch:
        masks = self._read_masks(positions) if with_masks else None
        return self.data.read_tokens(positions, self.layers), masks, positions

    def batches(self, order: list[np.ndarray], *, with_masks: bool = True) -> Iterator[Batch]:
        """The batches of ``order``, in order, read ahead; an error in a reader is raised here."""
        from concurrent.futures import ThreadPoolExecutor

        if with_masks:
            self.preload_masks(np.concatenate(order) if order else np.zeros(0, np.int64))
        pending: list = []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="featx-seg-reader") as pool:
            try:
                upcoming = iter(order)
                for positions in upcoming:
                    pending.append(pool.submit(self._read, positions, with_masks))
                    if len(pending) >= self.depth:
                        break
                while pending:
                    batch = pending.pop(0).result()
                    following = next(upcoming, None)
                    if following is not None:
                        pending.append(pool.submit(self._read, following, with_masks))
                    yield batch
            finally:
                for future in pending:
                    future.cancel()


class MemoryBatches:
    """The same batches from tokens and masks loaded into memory once (small sets, benchmarks)."""

    def __init__(self, data: SegmentationData, layers: Sequence[str], positions: np.ndarray) -> None:
        self.data = data
        self.layers = list(layers)
        positions = np.asarray(positions)
        self.where = {int(p): i for i, p in enumerate(positions)}
        self.tokens = data.read_tokens(positions, self.layers)
        train_like = data.split[positions] != "test"
        self.masks = np.zeros((len(positions), data.mask_size, data.mask_size), np.uint8)
        if train_like.any():
            self.masks[train_like] = data.read_masks(positions[train_like])

    def batches(self, order: list[np.ndarray], *, with_masks: bool = True) -> Iterator[Batch]:
        for positions in order:
            at = np.array([self.where[int(p)] for p in positions])
            if with_masks and (self.data.split[positions] == "test").any():
                raise SealedSplitError("test masks are sealed: they are read only by Splits.score_test_once")
            yield [t[at] for t in self.tokens], (self.masks[at] if with_masks else None), positions

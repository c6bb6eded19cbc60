"""Pull the arrays a probe setting needs out of a feature store.

A probe never loads a backbone: everything here reads the store's per-layer CLS and
mean-pooled patch-token arrays (``features/<layer>/{cls,pooled}``), keeps valid rows
only (written and not failed), and for 3D datasets averages the slices of each
volume into one row (classification is per volume).

Feature configurations follow DINOv2's ``create_linear_input``: the CLS tokens of the
last ``n_last_blocks`` blocks concatenated (shallow to deep), then, with ``avgpool``,
the mean patch token of the last block appended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from featx.cache.store import FeatureStore


META_PREFIX = "meta:"  # metadata columns ride along the index under this prefix while rows are chosen


class ProbeError(ValueError):
    """A probe cannot run on this input; the message says why and what to do."""


def block_names(layers: list[str], n_last_blocks: int = 1, avgpool: bool = False) -> list[str]:
    """Names of the arrays (``cls/<layer>``, ``pooled/<layer>``) one configuration concatenates."""
    if n_last_blocks < 1 or n_last_blocks > len(layers):
        raise ProbeError(f"n_last_blocks={n_last_blocks} but the store holds {len(layers)} layers: {layers}")
    names = [f"cls/{layer}" for layer in layers[-n_last_blocks:]]
    if avgpool:
        names.append(f"pooled/{layers[-1]}")
    return names


@dataclass
class ProbeData:
    """Features, labels and grouping of one dataset's probe units (images or volumes).

    ``blocks`` maps ``"cls/<layer>"`` / ``"pooled/<layer>"`` to ``(n, D)`` arrays
    (float32, or float16 to halve memory; :meth:`features` returns float32).
    ``labels`` is ``(n, C)`` float32: 0/1 with NaN = unknown for multi-label, one-hot for
    multi-class and binary.
    """

    blocks: dict[str, np.ndarray]
    layers: list[str]
    labels: np.ndarray
    patients: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    label_names: list[str]
    task: str
    level: str = "sample"  # "sample" or "volume"
    dataset: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    n_invalid: int = 0
    metadata: pd.DataFrame | None = None  # per-unit string columns (age, sex, view ...), row-aligned; None: none kept

    def __post_init__(self) -> None:
        n = self.labels.shape[0]
        for name, value in self.blocks.items():
            if value.shape[0] != n:
                raise ProbeError(f"block {name} has {value.shape[0]} rows, labels have {n}")
        for name in ("patients", "split", "ids"):
            if len(getattr(self, name)) != n:
                raise ProbeError(f"{name} has {len(getattr(self, name))} rows, labels have {n}")
        segmentation = self.task == "segmentation" and self.labels.shape[1] == 0  # targets are masks, kept elsewhere
        if self.task not in ("multilabel", "multiclass", "binary") and not segmentation:
            raise ProbeError(
                f"{self.dataset or 'store'}: task {self.task!r} is not a classification task; "
                "probes need multilabel, multiclass or binary labels"
            )
        if self.labels.shape[1] != len(self.label_names):
            raise ProbeError(f"{self.labels.shape[1]} label columns but {len(self.label_names)} label names")

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        features: np.ndarray | dict[str, np.ndarray],
        labels: np.ndarray,
        patients: np.ndarray,
        split: np.ndarray,
        *,
        task: str,
        label_names: list[str] | None = None,
        ids: np.ndarray | None = None,
        **kwargs: Any,
    ) -> ProbeData:
        """From in-memory arrays. A single array becomes the last layer's CLS (``cls/last``).

        A dict may hold ``cls/<layer>`` and ``pooled/<layer>`` entries; layers are
        taken in the order their ``cls/`` entries appear.
        """
        if isinstance(features, np.ndarray):
            blocks = {"cls/last": features, "pooled/last": features}
            layers = ["last"]
        else:
            blocks = dict(features)
            layers = [name.split("/", 1)[1] for name in blocks if name.startswith("cls/")]
        labels = np.asarray(labels, dtype=np.float32)
        if labels.ndim == 1:
            n_classes = int(labels.max()) + 1
            labels = np.eye(n_classes, dtype=np.float32)[labels.astype(int)]
        n = labels.shape[0]
        return cls(
            blocks=blocks,
            layers=layers,
            labels=labels,
            patients=np.asarray(patients).astype(str),
            split=np.asarray(split).astype(str),
            ids=np.asarray(ids).astype(str) if ids is not None else np.arange(n).astype(str),
            label_names=list(label_names) if label_names is not None else [f"c{i}" for i in range(labels.shape[1])],
            task=task,
            **kwargs,
        )

    # ---- access ---------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.labels.shape[1])

    def block_names(self, n_last_blocks: int = 1, avgpool: bool = False) -> list[str]:
        return block_names(self.layers, n_last_blocks, avgpool)

    def features(
        self, n_last_blocks: int = 1, avgpool: bool = False, rows: np.ndarray | None = None, dtype: type | None = np.float32
    ) -> np.ndarray:
        """``(n, D')`` concatenation for one configuration, in ``dtype`` (``None``: as stored)."""
        parts = []
        for name in self.block_names(n_last_blocks, avgpool):
            if name not in self.blocks:
                raise ProbeError(f"{self.dataset or 'store'}: features {name!r} were not loaded")
            block = self.blocks[name]
            parts.append(block if rows is None else block[rows])
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        return np.ascontiguousarray(out, dtype=dtype)

    def rows(self, split: str) -> np.ndarray:
        """Row numbers of one split (``"train+val"`` = both)."""
        wanted = split.split("+")
        return np.flatnonzero(np.isin(self.split, wanted))

    def subset(self, rows: np.ndarray) -> ProbeData:
        rows = np.asarray(rows)
        return ProbeData(
            blocks={k: v[rows] for k, v in self.blocks.items()},
            layers=list(self.layers),
            labels=self.labels[rows],
            patients=self.patients[rows],
            split=self.split[rows],
            ids=self.ids[rows],
            label_names=list(self.label_names),
            task=self.task,
            level=self.level,
            dataset=self.dataset,
            provenance=dict(self.provenance),
            n_invalid=self.n_invalid,
            metadata=None if self.metadata is None else self.metadata.iloc[rows].reset_index(drop=True),
        )


def _volume_mean(
    index: pd.DataFrame, labels: np.ndarray, blocks: dict[str, np.ndarray], dataset: str
) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Average the slices of each volume; 2D rows (volume_id "") stay as they are."""
    unit = np.where(index["volume_id"].to_numpy() == "", "img:" + index["sample_id"].to_numpy(), "vol:" + index["volume_id"].to_numpy())
    codes, uniques = pd.factorize(unit, sort=False)
    n_units = len(uniques)
    counts = np.bincount(codes, minlength=n_units).astype(np.float64)
    first = np.full(n_units, -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    out_blocks = {}
    for name, value in blocks.items():
        summed = np.zeros((n_units, value.shape[1]), dtype=np.float64)
        np.add.at(summed, codes, value.astype(np.float64))
        out_blocks[name] = (summed / counts[:, None]).astype(value.dtype)
    # Labels, patient and split must agree across the slices of a volume.
    unit_labels = labels[first]
    same = np.isclose(labels, unit_labels[codes], equal_nan=True).all(1)
    for column in ("patient_id", "split"):
        same &= index[column].to_numpy() == index[column].to_numpy()[first][codes]
    if not same.all():
        bad = index["volume_id"].to_numpy()[~same][0]
        raise ProbeError(f"{dataset}: slices of volume {bad!r} disagree on labels, patient or split")
    table = index.iloc[first].reset_index(drop=True).copy()
    table["unit_id"] = [u.split(":", 1)[1] for u in uniques]
    table["n_slices"] = counts.astype(int)
    return table, unit_labels, out_blocks


def load_probe_data(
    store: FeatureStore,
    *,
    n_last_blocks: int = 1,
    avgpool: bool = False,
    dtype: Any = np.float32,
) -> ProbeData:
    """Read what a setting needs from ``store`` (a :class:`featx.cache.FeatureStore`).

    Loads the CLS of the last ``n_last_blocks`` layers and, with ``avgpool``, the last
    layer's pooled patch tokens; valid rows only; volume means for 3D datasets.
    """
    dataset = store.dataset
    task = store.task
    if task not in ("multilabel", "multiclass", "binary"):
        raise ProbeError(
            f"{dataset}: store {store.path} holds a {task!r} dataset; classification probes need "
            "multilabel, multiclass or binary labels"
        )
    layers = store.layers
    n_last_blocks = min(n_last_blocks, len(layers))
    valid = np.asarray(store.valid, dtype=bool)
    if not valid.any():
        raise ProbeError(f"{dataset}: store {store.path} has no valid rows")
    rows = np.flatnonzero(valid)
    index = store.index.iloc[rows].reset_index(drop=True)
    meta = getattr(store, "metadata", None)  # the sample index's metadata columns, where the store has them
    meta_columns = [] if meta is None else [str(c) for c in meta.columns]
    for column in meta_columns:  # carried through the volume mean with the index (a volume takes its first slice's)
        index[META_PREFIX + column] = meta[column].to_numpy()[rows].astype(str)
    labels = np.asarray(store.labels, dtype=np.float32)[rows]
    all_rows = rows if len(rows) < store.n_rows else None
    blocks = {}
    for name in block_names(layers, n_last_blocks, avgpool):
        kind, layer = name.split("/", 1)
        value = store.read(kind, layer) if all_rows is None else store.read(kind, layer, rows=all_rows)
        store.refuse_damaged_rows(f"features/{layer}/{kind}", rows, value)
        blocks[name] = value.astype(dtype, copy=False)
        del value
    is_3d = bool((index["volume_id"] != "").any())
    if is_3d:
        index, labels, blocks = _volume_mean(index, labels, blocks, dataset)
        ids = index["unit_id"].to_numpy()
    else:
        ids = index["sample_id"].to_numpy()
    return ProbeData(
        blocks=blocks,
        layers=layers,
        labels=labels,
        patients=index["patient_id"].to_numpy().astype(str),
        split=index["split"].to_numpy().astype(str),
        ids=np.asarray(ids).astype(str),
        label_names=list(store.label_names),
        task=task,
        level="volume" if is_3d else "sample",
        dataset=dataset,
        provenance=dict(store.provenance()),
        n_invalid=int((~valid).sum()),
        metadata=pd.DataFrame({c: index[META_PREFIX + c].to_numpy() for c in meta_columns}) if meta_columns else None,
    )

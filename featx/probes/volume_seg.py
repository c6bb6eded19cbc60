"""Organ segmentation from a volume-row store's cached 3D feature maps (no backbone run).

The light 3D decoder (:class:`featx.decoders.volume.VolumeLinearDecoder`) is trained on the train
volumes' stored maps (``features/<stage>/patch``) against their stored masks with soft Dice +
cross-entropy; the learning rate is chosen on the validation volumes (macro Dice per volume,
:func:`featx.evaluation.segmentation.selection_dice`), then the chosen decoder is scored once on
the test volumes with the 2D decoders' metrics (:func:`featx.evaluation.segmentation.score_segmentation`,
``unit="volume"``: Dice / Jaccard per volume and over all voxels, patient bootstrap) and written as
the same records (:func:`featx.evaluation.records.seg_scored_records`), entered in the test-use ledger
(another hyper-parameter set scored on the same store's test warns and is marked ``test_reuse``). The
mean-mask baseline (each voxel the class most frequent there over the train masks) is scored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from featx.cache.store import FeatureStore
from featx.decoders.volume import VolumeLinearDecoder
from featx.evaluation import ledger
from featx.evaluation.features import ProbeError
from featx.evaluation.records import make_base, seg_scored_records
from featx.evaluation.segmentation import SegScored, confusion_counts, score_segmentation, selection_dice

SETTING = "seg3d_linear"
BASELINE = "seg3d_mean_mask"


@dataclass
class VolumeSegData:
    """A volume-row store's maps (stages ``(n, d, h, w, F)``), masks and grouping, valid rows only."""

    maps: dict[str, np.ndarray]
    masks: np.ndarray
    patients: np.ndarray
    split: np.ndarray
    ids: np.ndarray
    class_names: list[str]
    provenance: dict[str, Any]

    @classmethod
    def from_store(cls, store: FeatureStore, layers: list[str] | None = None) -> VolumeSegData:
        """Read the stored maps of ``layers`` (default: every stored stage) and the masks."""
        if store.task != "segmentation" or "masks" not in store.group:
            raise ProbeError(f"{store.path}: not a segmentation store with masks; extract a segmentation dataset")
        grids = store.patch_grid
        if not grids or any(len(g) != 3 for g in grids.values()):
            raise ProbeError(f"{store.path}: holds no 3D feature maps; extract the volumes with feature_maps=True")
        layers = layers or [layer for layer in store.layers if layer in grids]
        rows = np.flatnonzero(store.valid)
        index = store.index.iloc[rows]
        return cls(
            maps={layer: store.read_patch(layer, rows) for layer in layers},
            masks=store.read_masks(rows),
            patients=index["patient_id"].to_numpy().astype(str),
            split=index["split"].to_numpy().astype(str),
            ids=index["volume_id"].to_numpy().astype(str),
            class_names=store.label_names,
            provenance=store.provenance(),
        )

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.split == split)

    def inputs(self, rows: np.ndarray) -> list[torch.Tensor]:
        return [torch.from_numpy(np.ascontiguousarray(m[rows])).permute(0, 4, 1, 2, 3).float() for m in self.maps.values()]


@dataclass
class VolumeSegOutcome:
    test: SegScored
    baseline: SegScored
    lr: float
    records: list[dict[str, Any]]


def _loss(logits: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    probs = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(target.long(), n_classes).permute(0, 4, 1, 2, 3).float()[:, 1:]
    inter = (probs * onehot).sum((0, 2, 3, 4))
    dice = (2 * inter + 1) / (probs.sum((0, 2, 3, 4)) + onehot.sum((0, 2, 3, 4)) + 1)
    return 1 - dice.mean() + F.cross_entropy(logits, target.long())


def train_decoder(data: VolumeSegData, rows: np.ndarray, lr: float, epochs: int, seed: int) -> VolumeLinearDecoder:
    """The decoder trained on ``rows`` (full batch of volumes per step)."""
    torch.manual_seed(seed)
    n_classes = len(data.class_names)
    model = VolumeLinearDecoder([m.shape[-1] for m in data.maps.values()], n_classes, data.masks.shape[1:])
    inputs, target = data.inputs(rows), torch.from_numpy(data.masks[rows])
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        optimiser.zero_grad()
        _loss(model(inputs), target, n_classes).backward()
        optimiser.step()
    return model.eval()


def predict(model: VolumeLinearDecoder, data: VolumeSegData, rows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(data.inputs(rows)).argmax(1).numpy().astype(np.uint8)


def mean_mask(data: VolumeSegData, rows: np.ndarray) -> np.ndarray:
    """Per voxel, the class most frequent there over the masks of ``rows``."""
    n_classes = len(data.class_names)
    counts = np.stack([(data.masks[rows] == c).sum(0) for c in range(n_classes)])
    return counts.argmax(0).astype(np.uint8)


def run_volume_segmentation(store: FeatureStore, *, lrs: tuple[float, ...] = (3e-2, 1e-1), epochs: int = 100,
                            seed: int = 0, n_boot: int = 200, allow_test_reuse: bool = False) -> VolumeSegOutcome:
    """Train (train split), select the learning rate (val), score once on test; with the mean-mask baseline."""
    data = VolumeSegData.from_store(store)
    train, val, test = data.rows("train"), data.rows("val"), data.rows("test")
    if not len(train) or not len(val) or not len(test):
        raise ProbeError(f"{store.path}: 3D segmentation needs train, val and test volumes "
                         f"(found {len(train)} / {len(val)} / {len(test)})")
    n_classes = len(data.class_names)
    chosen, best, model = lrs[0], -1.0, None
    for lr in lrs:
        candidate = train_decoder(data, train, lr, epochs, seed)
        counts = confusion_counts(predict(candidate, data, val), data.masks[val], n_classes)
        value = selection_dice(counts, data.ids[val], data.class_names)
        if value > best:
            chosen, best, model = lr, value, candidate
    assert model is not None
    scoring = {"units": data.ids[test], "patients": data.patients[test], "class_names": data.class_names,
               "unit": "volume", "n_boot": n_boot, "seed": seed}
    test_scored = score_segmentation(predict(model, data, test), data.masks[test], **scoring)
    prior = np.broadcast_to(mean_mask(data, train), data.masks[test].shape)
    baseline = score_segmentation(np.ascontiguousarray(prior), data.masks[test], **scoring)
    records = []
    where = ledger.where_of(data.provenance, data.ids[test], data.patients[test], np.zeros((len(test), 0)))
    for setting, scored, hyper in ((SETTING, test_scored, {"decoder": "linear3d", "lr": chosen, "epochs": epochs}),
                                   (BASELINE, baseline, {"decoder": "mean_mask"})):
        grid = {**hyper, "lr_grid": list(lrs)} if setting == SETTING else hyper
        use = ledger.LEDGER.record(where, ledger.what_of(setting, grid), ledger.fingerprint_of(grid, seed),
                                   allow_reuse=allow_test_reuse)
        base = make_base(provenance=data.provenance, setting=setting, split="test", hyperparameters=hyper, seed=seed,
                         n_train=len(train), n_test=len(test), label_names=data.class_names,
                         extra={"method": hyper["decoder"], "level": "volume", "n_test_units": scored.n_units,
                                "n_classes": n_classes, "layers": list(data.maps), **use.as_record()})
        records.extend(seg_scored_records(scored, base))
    return VolumeSegOutcome(test=test_scored, baseline=baseline, lr=chosen, records=records)

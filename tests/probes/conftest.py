"""Fixtures for the probe tests: planted-signal features and real feature stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featx.evaluation.features import ProbeData


def planted(
    n_patients: int = 120,
    per_patient: int = 2,
    dim: int = 32,
    n_classes: int = 3,
    task: str = "multiclass",
    signal: float = 3.0,
    n_layers: int = 4,
    seed: int = 0,
    splits: tuple[float, float] = (0.6, 0.2),
) -> dict:
    """Per-layer CLS/pooled features whose last layers carry a planted class signal.

    Patients are assigned to train / val / test by the fractions in ``splits``; all
    images of a patient share the patient's labels.
    """
    rng = np.random.default_rng(seed)
    n = n_patients * per_patient
    patients = np.repeat([f"p{i:04d}" for i in range(n_patients)], per_patient)
    u = rng.permutation(n_patients)
    split_of = np.empty(n_patients, dtype=object)
    a, b = int(splits[0] * n_patients), int((splits[0] + splits[1]) * n_patients)
    split_of[u[:a]], split_of[u[a:b]], split_of[u[b:]] = "train", "val", "test"
    split = np.repeat(split_of, per_patient).astype(str)
    if task == "multilabel":
        pat_labels = (rng.random((n_patients, n_classes)) < 0.35).astype(np.float32)
    else:
        k = 2 if task == "binary" else n_classes
        pat_labels = np.eye(k, dtype=np.float32)[rng.integers(0, k, n_patients)]
    labels = np.repeat(pat_labels, per_patient, axis=0)
    directions = rng.normal(size=(labels.shape[1], dim)).astype(np.float32)
    blocks = {}
    layers = [f"block_{i}" for i in range(n_layers)]
    for depth, layer in enumerate(layers):
        strength = signal * (depth + 1) / n_layers
        blocks[f"cls/{layer}"] = (rng.normal(size=(n, dim)) + strength * labels @ directions).astype(np.float32)
        blocks[f"pooled/{layer}"] = (rng.normal(size=(n, dim)) + 0.5 * strength * labels @ directions).astype(np.float32)
    return {"blocks": blocks, "layers": layers, "labels": labels, "patients": patients, "split": split, "task": task}


def planted_data(**kwargs) -> ProbeData:
    p = planted(**kwargs)
    return ProbeData(
        blocks=p["blocks"],
        layers=p["layers"],
        labels=p["labels"],
        patients=p["patients"],
        split=p["split"],
        ids=np.arange(len(p["labels"])).astype(str),
        label_names=[f"c{i}" for i in range(p["labels"].shape[1])],
        task=p["task"],
        dataset="planted",
    )


def noise_data(**kwargs) -> ProbeData:
    return planted_data(signal=0.0, **kwargs)


def make_store(
    root: Path,
    *,
    dataset: str = "planted",
    backbone: str = "tiny_vit",
    task: str = "multiclass",
    n_patients: int = 100,
    per_patient: int = 2,
    dim: int = 16,
    n_classes: int = 3,
    signal: float = 3.0,
    volumes: bool = False,
    drop_val: bool = False,
    failed_rows: tuple[int, ...] = (),
    label_names: list[str] | None = None,
    random_init: bool = True,
    seed: int = 0,
) -> Path:
    """A real, published FeatureStore holding planted features (no backbone involved)."""
    from featx.cache import FeatureStore
    from featx.datasets.index import SampleIndex

    p = planted(n_patients=n_patients, per_patient=per_patient, dim=dim, n_classes=n_classes, task=task, signal=signal, seed=seed)
    n = len(p["labels"])
    split = p["split"].copy()
    if drop_val:
        split[split == "val"] = "train"
    table = pd.DataFrame(
        {
            "sample_id": [f"s{i:05d}" for i in range(n)],
            "patient_id": p["patients"],
            "split": split,
            "source": [f"/data/img{i}.png" for i in range(n)],
            "reader": "image",
        }
    )
    if volumes:  # each patient = one volume whose slices are its rows
        table["volume_id"] = [f"v_{pid}" for pid in p["patients"]]
        table["slice_index"] = np.tile(np.arange(per_patient), n_patients)
        table["slice_axis"] = 2
    names = label_names or [f"c{i}" for i in range(p["labels"].shape[1])]
    index = SampleIndex(dataset=dataset, task=task, modality="xray", label_names=names, table=table, labels=p["labels"])
    dims = dict.fromkeys(p["layers"], dim)
    folder = root / dataset / backbone
    folder.mkdir(parents=True, exist_ok=True)
    key = f"k{seed}{task[:2]}{int(volumes)}{int(drop_val)}"
    store = FeatureStore.create(
        folder / f"{key}.zarr.partial",
        key=key,
        key_inputs={"dataset": dataset},
        index=index,
        feature_dims=dims,
        block_rows=64,
        provenance={"backbone": {"name": backbone, "weights_hash": "deadbeef", "random_init": random_init, "img_size": 56}},
    )
    failed_all = np.zeros(n, dtype=bool)
    failed_all[list(failed_rows)] = True
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        feats = {layer: {kind: p["blocks"][f"{kind}/{layer}"][rows] for kind in ("cls", "pooled")} for layer in p["layers"]}
        failed = failed_all[rows]
        store.write_block(block, feats, failed, ["unreadable" if f else "" for f in failed])
    return store.publish()


@pytest.fixture
def store_factory(tmp_path):
    def factory(**kwargs) -> Path:
        return make_store(tmp_path / "cache", **kwargs)

    return factory

"""Planted-shape segmentation stores extracted with a tiny random ViT (real adapters, real stores)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featx.demo.data import _disk, make_shapes_task

SEG_VIT = {"depth": 5, "embed_dim": 32, "num_heads": 2}  # 5 blocks: the U-Net's bottleneck + 4 skips
SEG_SIZE = 56  # a 4 x 4 patch grid (the U-Net decodes at 64 x 64)


def make_shapes_montgomery(root: Path, n_images: int = 40, size: int = 56, seed: int = 0) -> Path:
    """Montgomery layout (CXR_png, ManualMask/{left,right}Mask): a bright ellipse anywhere in each half, on noise."""
    rng = np.random.default_rng(seed)
    root = Path(root) / "MontgomerySet"
    for folder in ("CXR_png", "ManualMask/leftMask", "ManualMask/rightMask"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    half = size // 2
    for i in range(n_images):
        image = rng.normal(0.3, 0.08, size=(size, size))
        masks = []
        for offset in (half, 0):  # patient's left lung = the image's right half
            cy, cx = rng.uniform(0.2, 0.8) * size, rng.uniform(0.3, 0.7) * half
            ry, rx = rng.uniform(0.12, 0.25) * size, rng.uniform(0.2, 0.35) * half
            disk = np.zeros((size, size), dtype=bool)
            disk[:, offset : offset + half] = _disk((size, half), cy, cx, ry, rx)
            image[disk] += 0.45
            masks.append(disk)
        name = f"MCUCXR_{i:04d}_{i % 2}.png"
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(root / "CXR_png" / name)
        for folder, disk in zip(("leftMask", "rightMask"), masks):
            Image.fromarray(disk.astype(np.uint8) * 255).save(root / "ManualMask" / folder / name)
    return root


def extract_seg(index, cache: Path, *, n_last: int = 5):
    from featx.backbones import load_backbone
    from featx.cache import FeatureStore
    from featx.datasets.preprocess import PreprocessConfig
    from featx.pipeline.extract import extract

    backbone = load_backbone("dinov2_vits14", img_size=SEG_SIZE, random_init=True, n_last=n_last, patch_tokens=True,
                             model_overrides=SEG_VIT)
    preprocess = PreprocessConfig.for_modality(index.modality, SEG_SIZE)
    result = extract(index, backbone, preprocess, cache, num_workers=0, progress=False)
    return FeatureStore.open(result.path)


@pytest.fixture(scope="session")
def shapes_2d(tmp_path_factory):
    """A published 2D store (montgomery layout, 3 classes) with patch tokens of 5 blocks."""
    from featx.datasets import build_index

    root = tmp_path_factory.mktemp("seg2d")
    index = build_index("montgomery", make_shapes_montgomery(root / "data"), val_fraction=0.2, test_fraction=0.25)
    return extract_seg(index, root / "cache")


@pytest.fixture(scope="session")
def shapes_3d(tmp_path_factory):
    """A published 3D store (MSD layout NIfTI, 2 classes) with patch tokens of 5 blocks."""
    from featx.datasets import build_index

    root = tmp_path_factory.mktemp("seg3d")
    index = build_index("msd", make_shapes_task(root / "data", n_volumes=12, size=48, n_slices=5),
                        val_fraction=0.2, test_fraction=0.3)
    return extract_seg(index, root / "cache")


def mean_mask_dice(data) -> float:
    """The trivial predictor: the train split's mean mask at its best threshold, scored on test (Dice per unit)."""
    from featx.evaluation.segmentation import score_segmentation

    train, test = data.positions("train"), data.positions("test")
    masks = data.read_masks(train)
    truth = data.read_masks(test, sealed_ok=True)
    best = 0.0
    for threshold in np.linspace(0.05, 0.95, 19):
        mean = np.zeros(masks.shape[1:], np.uint8)
        for c in range(1, data.n_classes):
            mean[(masks == c).mean(0) >= threshold] = c
        pred = np.repeat(mean[None], len(test), 0)
        scored = score_segmentation(pred, truth, data.unit_ids[test], data.patients[test], class_names=data.class_names,
                                    unit=data.level, n_boot=0)
        best = max(best, scored.values["dice"])
    return best

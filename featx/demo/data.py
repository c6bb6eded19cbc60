"""Deterministic planted-signal demo data in featx's generic CSV layout.

Two small datasets, each a CSV beside its files:
- ``xray/xray.csv``: X-ray-like 2D images (8- and 16-bit PNG, some JPEG) with three
  findings (multi-label) drawn independently per image: a bright nodule in a lung, a
  fluid level at a lung base, an enlarged heart shadow.
- ``ct/ct.csv``: CT-like NIfTI volumes in Hounsfield units with a per-volume label
  (``lesion`` / ``clear``): lesion volumes carry ground-glass blobs in the lungs.
- ``Task90_Shapes/``: a segmentation task in the Medical Segmentation Decathlon layout
  (``dataset.json``, ``imagesTr/``, ``labelsTr/``): CT-like noise volumes with bright
  ellipsoids, labelled ``shape`` (:func:`make_shapes_task`).
Patients own one to three images (or one volume) and are split 70/10/20 by patient.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

XRAY_FINDINGS = ("nodule", "effusion", "cardiomegaly")


@dataclass(frozen=True)
class DemoData:
    """Paths of the generated demo datasets."""

    xray_csv: Path
    ct_csv: Path


def _patient_splits(n_patients: int, rng: np.random.Generator) -> list[str]:
    """70/10/20 split over patients, shuffled deterministically."""
    n_val = max(2, round(0.1 * n_patients))
    n_test = max(2, round(0.2 * n_patients))
    splits = ["val"] * n_val + ["test"] * n_test + ["train"] * (n_patients - n_val - n_test)
    return list(rng.permutation(splits))


def _disk(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def xray_image(findings: dict[str, bool], size: int, rng: np.random.Generator) -> np.ndarray:
    """One chest-X-ray-like image in [0, 1] with the given findings planted."""
    s = size
    image = np.full((s, s), 0.55, dtype=np.float32)
    lungs = _disk((s, s), 0.5 * s, 0.3 * s, 0.3 * s, 0.14 * s) | _disk((s, s), 0.5 * s, 0.7 * s, 0.3 * s, 0.14 * s)
    image[lungs] = 0.2
    heart_scale = 1.8 if findings["cardiomegaly"] else 1.0
    heart = _disk((s, s), 0.62 * s, 0.5 * s, 0.12 * s * heart_scale, 0.1 * s * heart_scale)
    image[heart] = 0.6
    if findings["nodule"]:
        side = rng.choice([0.3, 0.7])
        cy, cx = rng.uniform(0.3, 0.55) * s, (side + rng.uniform(-0.05, 0.05)) * s
        image[_disk((s, s), cy, cx, 0.09 * s, 0.09 * s)] = 0.95
    if findings["effusion"]:
        side = rng.choice([0.3, 0.7])
        base = _disk((s, s), 0.5 * s, side * s, 0.3 * s, 0.14 * s) & (np.mgrid[:s, :s][0] > 0.6 * s)
        image[base] = 0.85
    image += rng.normal(0, 0.04, size=(s, s)).astype(np.float32)
    return np.clip(image, 0, 1)


def ct_volume(lesion: bool, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """One chest-CT-like volume in Hounsfield units, ground-glass blobs if ``lesion``."""
    nx, ny, nz = shape
    volume = np.full(shape, -1000.0, dtype=np.float32)
    body = _disk((nx, ny), nx / 2, ny / 2, 0.45 * nx, 0.38 * ny)
    lungs = _disk((nx, ny), 0.3 * nx, ny / 2, 0.12 * nx, 0.25 * ny) | _disk((nx, ny), 0.7 * nx, ny / 2, 0.12 * nx, 0.25 * ny)
    for z in range(nz):
        plane = volume[:, :, z]
        plane[body] = 40.0
        plane[lungs] = -850.0
    if lesion:
        for _ in range(4):
            cx = rng.choice([0.3, 0.7]) * nx + rng.uniform(-0.05, 0.05) * nx
            cy = rng.uniform(0.35, 0.65) * ny
            radius = rng.uniform(0.06, 0.1) * nx
            for z in range(nz):
                volume[:, :, z][_disk((nx, ny), cx, cy, radius, radius) & lungs] = -300.0
    volume += rng.normal(0, 25.0, size=shape).astype(np.float32)
    return volume


def ellipse(size: int, rng: np.random.Generator, radius: tuple[float, float] = (0.12, 0.25)) -> tuple[float, ...]:
    """Centre (cy, cx) and radii (ry, rx) of a random ellipse in a ``size`` square, in pixels."""
    cy, cx = rng.uniform(0.3, 0.7, size=2) * size
    ry, rx = rng.uniform(*radius, size=2) * size
    return float(cy), float(cx), float(ry), float(rx)


def shapes_volume(size: int, n_slices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A CT-like noise volume (HU, int16) holding one bright ellipsoid, and its 0/1 mask."""
    image = rng.normal(-700.0, 120.0, size=(size, size, n_slices)).astype(np.float32)
    label = np.zeros((size, size, n_slices), dtype=np.uint8)
    cy, cx, ry, rx = ellipse(size, rng)
    middle = (n_slices - 1) / 2
    for z in range(n_slices):
        scale = 1.0 - 0.5 * abs(z - middle) / max(middle, 1.0)  # smaller towards the ends
        label[:, :, z] = _disk((size, size), cy, cx, ry * scale, rx * scale)
    image[label > 0] += 900.0
    return image.astype(np.int16), label


def make_shapes_task(out: str | Path, *, n_volumes: int = 16, size: int = 48, n_slices: int = 6, seed: int = 0) -> Path:
    """An MSD-layout segmentation task ``Task90_Shapes`` under ``out`` (dataset ``msd_shapes``)."""
    import json

    import nibabel as nib

    root = Path(out) / "Task90_Shapes"
    marker = root / "demo-data.json"  # as make_demo_data: same parameters, files kept untouched
    params = {"n_volumes": n_volumes, "size": size, "n_slices": n_slices, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == params and (root / "dataset.json").is_file():
        return root
    rng = np.random.default_rng(seed)
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    training = []
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    for v in range(n_volumes):
        image, label = shapes_volume(size, n_slices, rng)
        name = f"shapes_{v:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image, affine), root / "imagesTr" / name)
        nib.save(nib.Nifti1Image(label, affine), root / "labelsTr" / name)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    meta = {"name": "Shapes", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "shape"},
            "numTraining": n_volumes, "training": training, "test": []}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))
    marker.write_text(json.dumps(params))
    return root


def _write_xray(path: Path, image: np.ndarray, kind: str) -> None:
    if kind == "png16":
        Image.fromarray((image * 65535).astype(np.uint16)).save(path)
    elif kind == "jpeg":
        Image.fromarray((image * 255).astype(np.uint8)).save(path, quality=95)
    else:
        Image.fromarray((image * 255).astype(np.uint8)).save(path)


def make_demo_data(out: str | Path, *, n_patients: int = 120, n_volumes: int = 60, seed: int = 0) -> DemoData:
    """Write both demo datasets under ``out`` (same seed, same bytes).

    Data already written there with the same parameters is kept as it is (files untouched),
    so a second demo run finds its feature stores up to date instead of extracting again.
    """
    import nibabel as nib

    out = Path(out)
    marker = out / "demo-data.json"
    params = {"n_patients": n_patients, "n_volumes": n_volumes, "seed": seed}
    made = DemoData(xray_csv=out / "xray" / "xray.csv", ct_csv=out / "ct" / "ct.csv")
    if marker.is_file() and json.loads(marker.read_text()) == params and made.xray_csv.is_file() and made.ct_csv.is_file():
        return made
    rng = np.random.default_rng(seed)
    xray_dir = out / "xray"
    (xray_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for p, split in enumerate(_patient_splits(n_patients, rng)):
        for v in range(int(rng.integers(1, 4))):
            findings = {f: bool(rng.random() < 0.4) for f in XRAY_FINDINGS}
            kind = ("png8", "png16", "jpeg")[(p + v) % 3]
            name = f"images/p{p:04d}_v{v}.{'jpg' if kind == 'jpeg' else 'png'}"
            _write_xray(xray_dir / name, xray_image(findings, 128, rng), kind)
            rows.append({"path": name, "patient_id": f"P{p:04d}", "split": split} | {f: int(findings[f]) for f in XRAY_FINDINGS})
    xray_csv = xray_dir / "xray.csv"
    with xray_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "patient_id", "split", *XRAY_FINDINGS])
        writer.writeheader()
        writer.writerows(rows)

    ct_dir = out / "ct"
    (ct_dir / "volumes").mkdir(parents=True, exist_ok=True)
    rows = []
    seen: dict[str, int] = {}
    for v, split in enumerate(_patient_splits(n_volumes, rng)):
        seen[split] = seen.get(split, 0) + 1
        lesion = seen[split] % 2 == 1  # both classes in every split
        volume = ct_volume(lesion, (64, 64, 8), rng)
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        name = f"volumes/ct{v:03d}.nii.gz"
        nib.save(nib.Nifti1Image(volume.astype(np.int16), affine), ct_dir / name)
        rows.append({"path": name, "patient_id": f"C{v:03d}", "split": split, "label": "lesion" if lesion else "clear"})
    ct_csv = ct_dir / "ct.csv"
    with ct_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "patient_id", "split", "label"])
        writer.writeheader()
        writer.writerows(rows)
    marker.write_text(json.dumps(params))  # last: an interrupted generation is redone
    return DemoData(xray_csv=xray_csv, ct_csv=ct_csv)

"""Deterministic planted-signal demo data in featx's generic CSV layout.

Two small datasets, each a CSV beside its files:
- ``xray/xray.csv``: X-ray-like 2D images (8- and 16-bit PNG, some JPEG) with three
  findings (multi-label) drawn independently per image: a bright nodule in a lung, a
  fluid level at a lung base, an enlarged heart shadow, each at a random strength
  (graded difficulty: some are faint), over varying anatomy, exposure and view (PA/AP).
- ``ct/ct.csv``: CT-like NIfTI volumes in Hounsfield units with a per-volume label
  (``lesion`` / ``clear``): vessels in every volume, ground-glass blobs of graded size and
  density in lesion volumes (some as subtle as a vessel).
- ``Task90_Shapes/``: a segmentation task in the Medical Segmentation Decathlon layout
  (``dataset.json``, ``imagesTr/``, ``labelsTr/``): CT-like noise volumes with bright
  ellipsoids, labelled ``shape`` (:func:`make_shapes_task`).
Patients own one to three images (or one volume) and are split 70/10/20 by patient; each has an
age and a sex (written as CSV columns with ``metadata=True``).
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


def xray_image(
    findings: dict[str, bool], size: int, rng: np.random.Generator, *, view: str = "PA"
) -> np.ndarray:
    """One chest-X-ray-like image in [0, 1] with the given findings planted, each at a random strength.

    Difficulty is graded: an enlarged heart is 1.15-1.8 times its normal size, a fluid level fills
    15-45% of a lung base at varying brightness, a nodule has a random size and contrast (the faint,
    small ones are hard to see). Anatomy, exposure and noise vary from image to image; an AP view
    magnifies the heart a little (as it does in real films), so cardiomegaly is harder to tell there.
    """
    s = size
    shift = rng.uniform(-0.03, 0.03, size=2) * s
    image = np.full((s, s), rng.uniform(0.5, 0.6), dtype=np.float32)
    left = _disk((s, s), 0.5 * s + shift[0], 0.3 * s + shift[1], 0.3 * s, 0.14 * s)
    right = _disk((s, s), 0.5 * s + shift[0], 0.7 * s + shift[1], 0.3 * s, 0.14 * s)
    image[left | right] = rng.uniform(0.15, 0.25)
    heart_scale = rng.uniform(0.9, 1.1) * (1.1 if view == "AP" else 1.0)
    if findings["cardiomegaly"]:
        heart_scale *= rng.uniform(1.15, 1.8)
    heart = _disk((s, s), 0.62 * s + shift[0], 0.5 * s + shift[1], 0.12 * s * heart_scale, 0.1 * s * heart_scale)
    image[heart] = 0.6
    if findings["nodule"]:
        side = rng.choice([0.3, 0.7])
        cy, cx = rng.uniform(0.3, 0.55) * s + shift[0], (side + rng.uniform(-0.05, 0.05)) * s + shift[1]
        radius = rng.uniform(0.03, 0.09) * s
        nodule = _disk((s, s), cy, cx, radius, radius)
        image[nodule] += rng.uniform(0.1, 0.7)
    if findings["effusion"]:
        lung = left if rng.random() < 0.5 else right
        level = rng.uniform(0.55, 0.7) * s + shift[0]
        image[lung & (np.mgrid[:s, :s][0] > level)] = rng.uniform(0.4, 0.85)
    image += rng.normal(0, 0.06, size=(s, s)).astype(np.float32)
    return np.clip(image, 0, 1)


def ct_volume(lesion: bool, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """One chest-CT-like volume in Hounsfield units: vessels, and ground-glass blobs if ``lesion``."""
    nx, ny, nz = shape
    volume = np.full(shape, -1000.0, dtype=np.float32)
    body = _disk((nx, ny), nx / 2, ny / 2, 0.45 * nx, 0.38 * ny)
    lungs = _disk((nx, ny), 0.3 * nx, ny / 2, 0.12 * nx, 0.25 * ny) | _disk((nx, ny), 0.7 * nx, ny / 2, 0.12 * nx, 0.25 * ny)
    for z in range(nz):
        plane = volume[:, :, z]
        plane[body] = 40.0
        plane[lungs] = -850.0
    # graded: every volume has up to three vessels in cross-section (small, faint); a lesion volume has one
    # to three ground-glass blobs, small to large, faint to dense, or (three in ten) one subtle blob that
    # looks like a vessel: no backbone tells those apart, which keeps AUROCs below 1
    blobs = [(rng.uniform(0.015, 0.035), rng.uniform(-760.0, -600.0)) for _ in range(int(rng.integers(0, 4)))]
    if lesion and rng.random() < 0.3:
        blobs.append((rng.uniform(0.015, 0.03), rng.uniform(-760.0, -650.0)))
    elif lesion:
        blobs += [(rng.uniform(0.03, 0.07), rng.uniform(-700.0, -450.0)) for _ in range(int(rng.integers(1, 4)))]
    for radius, density in blobs:
        cx = rng.choice([0.3, 0.7]) * nx + rng.uniform(-0.05, 0.05) * nx
        cy = rng.uniform(0.35, 0.65) * ny
        for z in range(nz):
            volume[:, :, z][_disk((nx, ny), cx, cy, radius * nx, radius * nx) & lungs] = density
    volume += rng.normal(0, 80.0, size=shape).astype(np.float32)
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


def _patient(rng: np.random.Generator) -> dict[str, object]:
    """A patient's age (years) and sex."""
    return {"age": int(rng.integers(25, 90)), "sex": "F" if rng.random() < 0.5 else "M"}


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def make_demo_data(
    out: str | Path, *, n_patients: int = 120, n_volumes: int = 80, seed: int = 0, metadata: bool = False
) -> DemoData:
    """Write both demo datasets under ``out`` (same seed, same bytes).

    Every patient has an age and a sex, every X-ray a view (PA or AP, which changes how the heart
    looks); they are drawn from their own random stream, so the images are the same with or without
    ``metadata``, which writes them as columns ``age, sex, view`` (CT: ``age, sex``) of the CSVs
    (the CSV adapter must then be told they are metadata, not labels: ``METADATA_COLUMNS``).
    Data already written there with the same parameters is kept as it is (files untouched),
    so a second demo run finds its feature stores up to date instead of extracting again.
    """
    import nibabel as nib

    out = Path(out)
    marker = out / "demo-data.json"
    params = {"n_patients": n_patients, "n_volumes": n_volumes, "seed": seed, "metadata": metadata}
    made = DemoData(xray_csv=out / "xray" / "xray.csv", ct_csv=out / "ct" / "ct.csv")
    if marker.is_file() and json.loads(marker.read_text()) == params and made.xray_csv.is_file() and made.ct_csv.is_file():
        return made
    rng = np.random.default_rng(seed)
    people = np.random.default_rng([seed, 1])  # metadata: its own stream
    xray_dir = out / "xray"
    (xray_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for p, split in enumerate(_patient_splits(n_patients, rng)):
        patient = _patient(people)
        for v in range(int(rng.integers(1, 4))):
            findings = {f: bool(rng.random() < 0.4) for f in XRAY_FINDINGS}
            view = "AP" if people.random() < 0.3 else "PA"
            kind = ("png8", "png16", "jpeg")[(p + v) % 3]
            name = f"images/p{p:04d}_v{v}.{'jpg' if kind == 'jpeg' else 'png'}"
            _write_xray(xray_dir / name, xray_image(findings, 128, rng, view=view), kind)
            extra = patient | {"view": view} if metadata else {}
            rows.append({"path": name, "patient_id": f"P{p:04d}", "split": split, **extra}
                        | {f: int(findings[f]) for f in XRAY_FINDINGS})
    xray_csv = xray_dir / "xray.csv"
    _write_csv(xray_csv, rows)

    ct_dir = out / "ct"
    (ct_dir / "volumes").mkdir(parents=True, exist_ok=True)
    rows = []
    seen: dict[str, int] = {}
    for v, split in enumerate(_patient_splits(n_volumes, rng)):
        patient = _patient(people)
        seen[split] = seen.get(split, 0) + 1
        lesion = seen[split] % 2 == 1  # both classes in every split
        volume = ct_volume(lesion, (64, 64, 8), rng)
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        name = f"volumes/ct{v:03d}.nii.gz"
        nib.save(nib.Nifti1Image(volume.astype(np.int16), affine), ct_dir / name)
        rows.append({"path": name, "patient_id": f"C{v:03d}", "split": split, **(patient if metadata else {}),
                     "label": "lesion" if lesion else "clear"})
    ct_csv = ct_dir / "ct.csv"
    _write_csv(ct_csv, rows)
    marker.write_text(json.dumps(params))  # last: an interrupted generation is redone
    return DemoData(xray_csv=xray_csv, ct_csv=ct_csv)

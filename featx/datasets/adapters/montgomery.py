"""Montgomery County chest X-ray set (Jaeger et al. 2014): 138 PA chest X-rays with lung masks.

Expected folder (the ``MontgomerySet`` folder of NLM's download)::

    ROOT/CXR_png/MCUCXR_0001_0.png ...
    ROOT/ManualMask/leftMask/MCUCXR_0001_0.png
    ROOT/ManualMask/rightMask/MCUCXR_0001_0.png
    ROOT/ClinicalReadings/MCUCXR_0001_0.txt   (not used)

Segmentation with 3 classes: background, left lung, right lung; the two mask PNGs are
merged into one mask at read time (reader ``montgomery``). One image per patient
(``MCUCXR_0001``). No official split: systematic sampling of patients
(``val_fraction`` / ``test_fraction``). Images without both masks, or whose masks have
another size, are quarantined.
"""

from __future__ import annotations

from pathlib import Path

from featx.datasets.adapters._common import find_dir, finish, sort_rows, systematic_split
from featx.datasets.index import DatasetError, Problem, SampleIndex
from featx.datasets.readers import image_file_shape
from featx.datasets.registry import register_dataset

CLASSES = ["background", "left lung", "right lung"]


@register_dataset("montgomery", "Montgomery County CXR: CXR_png/ + ManualMask/{left,right}Mask -> 3-class lung masks")
def index_montgomery(
    root: Path, *, val_fraction: float | None = None, test_fraction: float | None = None
) -> SampleIndex:
    """Index the Montgomery County set at ``root`` (MontgomerySet or a folder holding it)."""
    root = find_dir(root, "CXR_png")
    images = sorted(p for p in (root / "CXR_png").glob("*.png") if not p.name.startswith("."))
    if not images:
        raise DatasetError(f"{root / 'CXR_png'}: no PNG images")
    problems: list[Problem] = []
    rows = []
    for image in images:
        left = root / "ManualMask" / "leftMask" / image.name
        right = root / "ManualMask" / "rightMask" / image.name
        absent = [str(m) for m in (left, right) if not m.exists()]
        if absent:
            problems.append(Problem(str(image), f"mask not found: {', '.join(absent)}"))
            continue
        try:
            shape = image_file_shape(str(image))
            bad = [(m, s) for m in (left, right) if (s := image_file_shape(str(m))) != shape]
        except DatasetError as exc:
            problems.append(Problem(str(image), str(exc)))
            continue
        if bad:
            problems.append(Problem(str(bad[0][0]), f"mask shape {bad[0][1]} differs from image shape {shape} of {image}"))
            continue
        stem = image.stem
        patient = stem.rsplit("_", 1)[0] if stem.count("_") >= 2 else stem
        rows.append({"sample_id": image.name, "patient_id": patient, "split": "train", "source": str(image),
                     "reader": "image", "mask_source": str(left), "mask_reader": "montgomery"})
    rows, _ = sort_rows(rows)
    if rows:
        import pandas as pd

        table = systematic_split(pd.DataFrame(rows), "montgomery", val_fraction=val_fraction, test_fraction=test_fraction)
        rows = table.to_dict("records")
    return finish(dataset="montgomery", task="segmentation", modality="xray", label_names=list(CLASSES),
                  rows=rows, labels=[], problems=problems, root=root)

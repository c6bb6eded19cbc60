"""Tiny datasets written in each benchmark's NATIVE on-disk layout, for tests.

Every ``make_*`` writes into a folder you give it (a pytest ``tmp_path``) and returns
the path to hand to ``build_index``. Images are tiny (16x16 by default) and carry a
class-dependent pattern (a bright square whose position depends on the class), so a
probe on random-weight features can still separate classes. All writers are
deterministic (seeded).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

NIH_FINDINGS = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]
CHEXPERT_COLUMNS = [
    "Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly",
    "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax",
    "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices",
]
NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)


# ------------------------------------------------------------------------------------------
# File writers
# ------------------------------------------------------------------------------------------


def pattern(cls: int, size: int = 16, seed: int = 0, dtype=np.uint8, high: float = 255.0) -> np.ndarray:
    """A (size, size) image: noise plus a bright square whose position encodes ``cls``."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 0.3, (size, size))
    q = max(size // 4, 1)
    r, c = divmod(int(cls) % 4, 2)
    image[r * 2 * q : r * 2 * q + q * 2, c * 2 * q : c * 2 * q + q * 2] += 0.6
    return (np.clip(image, 0, 1) * high).astype(dtype)


def write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, format="PNG")
    return path


def write_jpeg(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, format="JPEG", quality=95)
    return path


def write_nifti(path: Path, volume: np.ndarray, affine: np.ndarray | None = None) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(np.asarray(volume), np.eye(4) if affine is None else affine)
    nib.save(img, str(path))
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (a broken download)."""
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def _mat_userblock(handle_path: Path) -> None:
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 ."
    block = header.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
    with open(handle_path, "r+b") as fh:
        fh.write(block.ljust(512, b"\x00"))


def write_mat_v73(path: Path, image: np.ndarray, label: int, pid: str, mask: np.ndarray | None = None) -> Path:
    """A MATLAB v7.3 (HDF5) file with struct ``cjdata`` as in the Figshare dataset (column-major)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        g = f.create_group("cjdata")
        g.attrs["MATLAB_class"] = np.bytes_("struct")
        d = g.create_dataset("image", data=np.asarray(image, dtype=np.int16).T)
        d.attrs["MATLAB_class"] = np.bytes_("int16")
        d = g.create_dataset("label", data=np.array([[float(label)]]))
        d.attrs["MATLAB_class"] = np.bytes_("double")
        d = g.create_dataset("PID", data=np.array([[ord(c)] for c in pid], dtype=np.uint16))
        d.attrs["MATLAB_class"] = np.bytes_("char")
        if mask is not None:
            d = g.create_dataset("tumorMask", data=np.asarray(mask, dtype=np.uint8).T)
            d.attrs["MATLAB_class"] = np.bytes_("logical")
        d = g.create_dataset("tumorBorder", data=np.zeros((1, 4)))
        d.attrs["MATLAB_class"] = np.bytes_("double")
    _mat_userblock(path)
    return path


def write_mat_v5(path: Path, image: np.ndarray, label: int = 1) -> Path:
    """The same content saved as an old MATLAB v5 .mat (what featx must refuse clearly)."""
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"cjdata": {"image": image, "label": float(label), "PID": "1"}})
    return path


def write_dicom_series(
    folder: Path,
    volume: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (1.0, 0.8, 0.8),
    slope: float = 1.0,
    intercept: float = -1024.0,
    patient_id: str = "P0",
    modality: str = "CT",
    positions: list[float] | None = None,
    series_uid: str | None = None,
) -> Path:
    """Write ``volume`` (slices, rows, cols) of stored values as one DICOM file per slice.

    Axial slices, ImageOrientationPatient 1/0/0/0/1/0, z = ``positions`` (default
    k * spacing[0]); files are named in reverse so order must come from the positions.
    Stored value v means v * slope + intercept in the output units.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume, dtype=np.uint16)
    series_uid = series_uid or generate_uid(entropy_srcs=[str(folder), patient_id])
    study_uid = generate_uid(entropy_srcs=[patient_id, "study"])
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    z = positions if positions is not None else [k * spacing[0] for k in range(volume.shape[0])]
    n = volume.shape[0]
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientID = patient_id
        ds.PatientName = patient_id
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.Modality = modality
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(z[k])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[2])]
        ds.SliceThickness = float(spacing[0])
        ds.Rows, ds.Columns = int(volume.shape[1]), int(volume.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.PixelData = volume[k].tobytes()
        ds.save_as(folder / f"IM{n - k:04d}.dcm", enforce_file_format=True)
    return folder


# ------------------------------------------------------------------------------------------
# Native-layout datasets
# ------------------------------------------------------------------------------------------


def make_nih(root: Path, n_patients: int = 8, images_per_patient: int = 2, size: int = 16,
             official_split: bool = True) -> Path:
    """NIH ChestX-ray14: Data_Entry_2017.csv, images_001/images/*.png, train_val_list.txt, test_list.txt.

    Patient p's images carry finding ``NIH_FINDINGS[p % 3]`` (and 'Effusion' too for even
    image numbers), patient 0's first image is 'No Finding'. The last quarter of
    patients are in test_list.txt. Returns the dataset folder.
    """
    root = Path(root) / "ChestXray-NIHCC"
    lines = [NIH_HEADER]
    trainval, test = [], []
    n_test = max(1, n_patients // 4)
    for p in range(1, n_patients + 1):
        for i in range(images_per_patient):
            name = f"{p:08d}_{i:03d}.png"
            finding = NIH_FINDINGS[p % 3]
            labels = finding if i % 2 else f"{finding}|Effusion" if finding != "Effusion" else finding
            if p == 1 and i == 0:
                labels = "No Finding"
            folder = "images_001" if p <= n_patients // 2 else "images_002"
            write_png(root / folder / "images" / name, pattern(p % 3, size, seed=p * 100 + i))
            lines.append(f"{name},{labels},{i},{p},{40 + p},{'M' if p % 2 else 'F'},PA,{size},{size},0.143,0.143,")
            (test if p > n_patients - n_test else trainval).append(name)
    root.mkdir(parents=True, exist_ok=True)
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    if official_split:
        (root / "train_val_list.txt").write_text("\n".join(trainval) + "\n")
        (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return root


def make_chexpert(root: Path, n_patients: int = 8, n_valid_patients: int = 2, size: int = 16,
                  variant: str = "small") -> Path:
    """CheXpert: CheXpert-v1.0-small/{train,valid}.csv and {train,valid}/patientXXXXX/study1/view*_*.jpg.

    Every training patient has a frontal and a lateral view; labels cycle through
    1 / 0 / -1 / blank so every uncertainty policy is exercised. Returns the dataset folder.
    """
    folder = "CheXpert-v1.0-small" if variant == "small" else "CheXpert-v1.0"
    root = Path(root) / folder
    values = ["1.0", "0.0", "-1.0", ""]

    def write(split: str, patients: range, csv_name: str) -> None:
        lines = [",".join(CHEXPERT_COLUMNS)]
        for p in patients:
            for view, kind in (("view1_frontal.jpg", "Frontal"), ("view2_lateral.jpg", "Lateral")):
                if split == "valid" and kind == "Lateral":
                    continue
                rel = f"{folder}/{split}/patient{p:05d}/study1/{view}"
                write_jpeg(root / split / f"patient{p:05d}" / "study1" / view, pattern(p % 2, size, seed=p))
                row = dict.fromkeys(CHEXPERT_COLUMNS, "")
                row.update({"Path": rel, "Sex": "Female", "Age": "60", "Frontal/Lateral": kind,
                            "AP/PA": "AP" if kind == "Frontal" else ""})
                for j, name in enumerate(["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]):
                    v = values[(p + j) % 4] if split == "train" else values[(p + j) % 2]
                    row[name] = v
                row["Cardiomegaly"] = "1.0" if p % 2 else "0.0"
                lines.append(",".join(row[c] for c in CHEXPERT_COLUMNS))
        (root / csv_name).write_text("\n".join(lines) + "\n")

    root.mkdir(parents=True, exist_ok=True)
    write("train", range(1, n_patients + 1), "train.csv")
    write("valid", range(64541, 64541 + n_valid_patients), "valid.csv")
    return root


def make_montgomery(root: Path, n_images: int = 8, size: int = 16) -> Path:
    """Montgomery County: MontgomerySet/CXR_png/MCUCXR_XXXX_Y.png + ManualMask/{leftMask,rightMask}/ (0/255 PNGs).

    The left-lung mask is the image's right half (patient's left), the right-lung mask the left half.
    """
    root = Path(root) / "MontgomerySet"
    for i in range(1, n_images + 1):
        name = f"MCUCXR_{i:04d}_{i % 2}.png"
        write_png(root / "CXR_png" / name, pattern(i % 2, size, seed=i))
        left = np.zeros((size, size), dtype=np.uint8)
        left[2:-2, size // 2 + 1 : -2] = 255
        right = np.zeros((size, size), dtype=np.uint8)
        right[2:-2, 2 : size // 2 - 1] = 255
        write_png(root / "ManualMask" / "leftMask" / name, left)
        write_png(root / "ManualMask" / "rightMask" / name, right)
        (root / "ClinicalReadings").mkdir(parents=True, exist_ok=True)
        (root / "ClinicalReadings" / name.replace(".png", ".txt")).write_text("Patient's Sex: F\n")
    return root


def make_sarscov2(root: Path, n_covid: int = 4, n_healthy: int = 2, n_others: int = 2, n_slices: int = 3,
                  size: int = 16) -> Path:
    """SARS-CoV-2 CT multi-class release: Covid/, Healthy/, Others/ with 'Patient N' folders of PNG slices.

    Slices are RGB PNGs named 1.png, 2.png, ..., 10.png (natural order matters).
    """
    root = Path(root) / "New_Data_CoV2"
    for folder, n, cls in (("Covid", n_covid, 1), ("Healthy", n_healthy, 0), ("Others", n_others, 2)):
        for p in range(1, n + 1):
            for k in range(1, n_slices + 1):
                grey = pattern(cls, size, seed=p * 10 + k)
                write_png(root / folder / f"Patient {p}" / f"{k}.png", np.stack([grey] * 3, axis=-1))
    return root


def _seg_volume(shape: tuple[int, int, int], n_classes: int, seed: int, ct: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.uint8)
    x, y, z = shape
    for c in range(1, n_classes):
        x0 = (c * 3) % max(x - 4, 1)
        label[x0 : x0 + 4, y // 4 : y // 4 + 4, :] = c
    if ct:
        image = rng.normal(-800, 30, shape) + (label > 0) * 900
        return image.astype(np.int16), label
    return (rng.uniform(0, 50, shape) + (label > 0) * 300).astype(np.float32), label


def make_msd(root: Path, task: str = "Task09_Spleen", n_volumes: int = 6, shape: tuple[int, int, int] = (16, 16, 4),
             modality: str = "CT", labels: dict[str, str] | None = None) -> Path:
    """An MSD task folder: dataset.json, imagesTr/, labelsTr/, imagesTs/ (plus a macOS ``._`` file)."""
    short = task.split("_", 1)[1].lower()
    root = Path(root) / task
    labels = labels or {"0": "background", "1": short}
    training = []
    for i in range(1, n_volumes + 1):
        image, label = _seg_volume(shape, len(labels), seed=i, ct=modality == "CT")
        affine = np.diag([0.8, 0.8, 2.5, 1.0])
        write_nifti(root / "imagesTr" / f"{short}_{i}.nii.gz", image, affine)
        write_nifti(root / "labelsTr" / f"{short}_{i}.nii.gz", label, affine)
        training.append({"image": f"./imagesTr/{short}_{i}.nii.gz", "label": f"./labelsTr/{short}_{i}.nii.gz"})
    write_nifti(root / "imagesTs" / f"{short}_100.nii.gz", _seg_volume(shape, 2, 0, True)[0])
    (root / "imagesTr" / f"._{short}_1.nii.gz").write_bytes(b"\x00\x05\x16\x07 mac resource fork")
    meta = {
        "name": short.capitalize(), "description": "tiny test fixture", "reference": "", "licence": "CC-BY-SA 4.0",
        "release": "1.0", "tensorImageSize": "3D", "modality": {"0": modality}, "labels": labels,
        "numTraining": n_volumes, "numTest": 1, "training": training, "test": [f"./imagesTs/{short}_100.nii.gz"],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=4))
    return root


AMOS_LABELS = {
    "0": "background", "1": "spleen", "2": "right kidney", "3": "left kidney", "4": "gall bladder", "5": "esophagus",
    "6": "liver", "7": "stomach", "8": "arota", "9": "postcava", "10": "pancreas", "11": "right adrenal gland",
    "12": "left adrenal gland", "13": "duodenum", "14": "bladder", "15": "prostate/uterus",
}


def make_amos(root: Path, n_train_ct: int = 6, n_val_ct: int = 2, n_mri: int = 1,
              shape: tuple[int, int, int] = (16, 16, 3)) -> Path:
    """AMOS 2022: amos22/dataset.json, imagesTr/labelsTr (CT ids < 500, MRI >= 500), imagesVa/labelsVa."""
    root = Path(root) / "amos22"
    training, validation = [], []
    ids = [("Tr", i) for i in range(1, n_train_ct + 1)] + [("Tr", 500 + i) for i in range(1, n_mri + 1)]
    ids += [("Va", 100 + i) for i in range(1, n_val_ct + 1)]
    for part, i in ids:
        image, label = _seg_volume(shape, 16, seed=i, ct=i < 500)
        name = f"amos_{i:04d}.nii.gz"
        write_nifti(root / f"images{part}" / name, image, np.diag([0.7, 0.7, 5.0, 1.0]))
        write_nifti(root / f"labels{part}" / name, label, np.diag([0.7, 0.7, 5.0, 1.0]))
        entry = {"image": f"./images{part}/{name}", "label": f"./labels{part}/{name}"}
        (training if part == "Tr" else validation).append(entry)
    meta = {
        "name": "AMOS", "description": "tiny test fixture", "tensorImageSize": "3D", "modality": {"0": "CT"},
        "labels": AMOS_LABELS, "numTraining": len(training), "numValidation": len(validation), "numTest": 0,
        "training": training, "validation": validation, "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta, indent=4))
    return root


def make_figshare(root: Path, n_patients: int = 9, images_per_patient: int = 2, size: int = 16) -> Path:
    """Figshare brain tumour: brainTumorDataPublic_1-766/1.mat ... as MATLAB v7.3 with cjdata fields.

    Patient p has label 3p // n_patients + 1 (so the default split has every class in train and test); files numbered 1..N in patient order. Also writes
    cvind.mat (ignored by the adapter).
    """
    root = Path(root) / "figshare_brain_tumor"
    number = 1
    for p in range(n_patients):
        for _ in range(images_per_patient):
            label = (3 * p) // n_patients + 1
            image = pattern(label - 1, size, seed=number, dtype=np.int16, high=1000.0)
            image[0, : size // 2] = 1000  # marks the top row: checks the column-major transpose
            mask = np.zeros((size, size), dtype=np.uint8)
            mask[size // 4 : size // 2, size // 4 : size // 2] = 1
            write_mat_v73(root / "brainTumorDataPublic_1-766" / f"{number}.mat", image, label, f"{100000 + p}", mask)
            number += 1
    write_mat_v73(root / "cvind.mat", np.zeros((2, 2)), 1, "x")
    return root


def make_dicom(root: Path, n_series: int = 6, shape: tuple[int, int, int] = (4, 16, 16)) -> tuple[Path, Path]:
    """DICOM series folders ``ROOT/patientN/CT1/IM*.dcm`` plus ``labels.csv`` (path,label).

    Returns (root, labels CSV path).
    """
    root = Path(root) / "dicom_study"
    lines = ["path,label"]
    for i in range(n_series):
        cls = i % 2
        stored = np.stack([pattern(cls, shape[1], seed=i * 10 + k, dtype=np.uint16, high=1500.0) for k in range(shape[0])])
        write_dicom_series(root / f"patient{i}" / "CT1", stored, patient_id=f"patient{i}")
        lines.append(f"patient{i}/CT1,{'abnormal' if cls else 'normal'}")
    csv = root.parent / "dicom_labels.csv"
    csv.write_text("\n".join(lines) + "\n")
    return root, csv


def make_csv_2d(root: Path, n_patients: int = 8, images_per_patient: int = 2, size: int = 16,
                multilabel: bool = False) -> Path:
    """The generic CSV layout: images/*.png + dataset.csv (path,patient_id,split,label | 0/1 columns)."""
    root = Path(root) / "csv2d"
    header = "path,patient_id,split," + ("a,b" if multilabel else "label")
    lines = [header]
    for p in range(n_patients):
        split = "test" if p % 4 == 3 else "val" if p % 4 == 2 else "train"
        for i in range(images_per_patient):
            cls = p % 2
            rel = f"images/p{p}_{i}.png"
            write_png(root / rel, pattern(cls, size, seed=p * 10 + i))
            labels = f"{cls},{1 - cls}" if multilabel else ("pos" if cls else "neg")
            lines.append(f"{rel},p{p},{split},{labels}")
    (root / "dataset.csv").write_text("\n".join(lines) + "\n")
    return root / "dataset.csv"


def make_csv_3d(root: Path, n_patients: int = 6, shape: tuple[int, int, int] = (16, 16, 3)) -> Path:
    """The generic CSV layout with NIfTI volumes: volumes/*.nii.gz + dataset.csv (path,patient_id,split,label)."""
    root = Path(root) / "csv3d"
    lines = ["path,patient_id,split,label"]
    for p in range(n_patients):
        cls = p % 2
        split = "test" if p % 3 == 2 else "val" if p % 3 == 1 else "train"
        volume = np.stack([pattern(cls, shape[0], seed=p * 10 + k).astype(np.int16) for k in range(shape[2])], axis=-1)
        rel = f"volumes/case{p}.nii.gz"
        write_nifti(root / rel, volume)
        lines.append(f"{rel},p{p},{split},{'pos' if cls else 'neg'}")
    (root / "dataset.csv").write_text("\n".join(lines) + "\n")
    return root / "dataset.csv"

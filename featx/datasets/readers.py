"""Readers: a sample-table row -> raw pixels (float32, native intensity units) and its mask.

Each reader is registered by name; a row's ``reader`` / ``mask_reader`` column says
which one decodes it. Images come back as ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB) in
their stored units (8/16-bit counts, Hounsfield units, MRI signal), masks as ``(H, W)``
uint8 class ids. Every failure is a DatasetError naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from featx.datasets.index import DatasetError

Row = Mapping[str, Any]
Reader = Callable[[Row], np.ndarray]

READERS: dict[str, Reader] = {}
MASK_READERS: dict[str, Reader] = {}


def register_reader(name: str, *, mask: bool = False) -> Callable[[Reader], Reader]:
    """Register an image reader (or, with ``mask=True``, a mask reader) under ``name``."""

    def decorate(fn: Reader) -> Reader:
        (MASK_READERS if mask else READERS)[name] = fn
        return fn

    return decorate


def load_sample(row: Row) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one row's pixels and, if it has one, its mask (same height and width)."""
    reader = READERS.get(row["reader"])
    if reader is None:
        raise DatasetError(f"{row['source']}: unknown reader {row['reader']!r}; known: {sorted(READERS)}")
    image = reader(row)
    if not np.isfinite(image).all():
        raise DatasetError(f"{row['source']}: pixel values contain NaN or infinity")
    mask = None
    if row.get("mask_source"):
        mask_reader = MASK_READERS.get(row["mask_reader"])
        if mask_reader is None:
            raise DatasetError(f"{row['mask_source']}: unknown mask reader {row['mask_reader']!r}")
        mask = mask_reader(row)
        if mask.shape != image.shape[:2]:
            raise DatasetError(
                f"{row['mask_source']}: mask shape {mask.shape} differs from image shape {image.shape[:2]} "
                f"of {row['source']}"
            )
    return image, mask


def read_image_file(path: str) -> np.ndarray:
    """Decode a PNG/JPEG/TIFF (8- or 16-bit, grey or RGB) to float32 in its stored units."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "P", "LA", "CMYK", "YCbCr"):
                img = img.convert("RGB")
            array = np.asarray(img)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot decode image ({exc})") from exc
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or array.size == 0:
        raise DatasetError(f"{path}: unexpected image shape {array.shape}")
    return array.astype(np.float32)


@register_reader("image")
def _read_image(row: Row) -> np.ndarray:
    return read_image_file(str(row["source"]))


@register_reader("image", mask=True)
def _read_image_mask(row: Row) -> np.ndarray:
    mask = read_image_file(str(row["mask_source"]))
    if mask.ndim == 3:
        mask = mask[..., 0]
    return mask.astype(np.uint8)


DEFAULT_MAX_VOXELS = 2**29  # 512 Mi voxels: 2 GiB as float32 (a 512 x 512 x 2048 CT fits)
GZIP_MAX_RATIO = 1032  # deflate never expands data more than this: a .nii.gz cannot hold more


def check_nifti_size(path: str, img: Any, max_voxels: int | None = None) -> None:
    """Refuse a NIfTI whose header declares more data than the file can hold (or than ``max_voxels``).

    Checked from the header and the file size before any voxel is read, so a 352-byte
    file declaring 20000 x 20000 x 3 voxels is refused in bounded memory.
    """
    import math
    import os

    shape = tuple(int(s) for s in img.shape)
    voxels = math.prod(shape)
    itemsize = int(img.get_data_dtype().itemsize)
    declared = int(getattr(img.dataobj, "offset", 0)) + voxels * itemsize
    size = os.path.getsize(path)
    compressed = path.lower().endswith(".gz")
    holds = size * GZIP_MAX_RATIO + 2**16 if compressed else size
    dims = "x".join(str(s) for s in shape)
    if declared > holds:
        raise DatasetError(
            f"{path}: header declares {dims} voxels ({declared:,} bytes) but the file holds only {size:,} bytes"
            f"{' (compressed)' if compressed else ''}: truncated or a bad header"
        )
    if max_voxels is not None and voxels > max_voxels:
        raise DatasetError(f"{path}: header declares {dims} = {voxels:,} voxels, above the ceiling of "
                           f"{max_voxels:,} (raise it with --option max_voxels=N if the volume is real)")


@lru_cache(maxsize=2)
def load_canonical_volume(path: str) -> np.ndarray:
    """A NIfTI volume reoriented to the closest canonical (RAS+) orientation, float32.

    Reorienting through the affine makes a left-right flipped file give the same
    slices as the original. Cached per process: slices of one volume come in a row.
    """
    import nibabel as nib

    try:
        img = nib.load(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except Exception as exc:  # nibabel raises many types for truncated or corrupt files
        raise DatasetError(f"{path}: cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    check_nifti_size(path, img)
    try:
        canonical = nib.as_closest_canonical(img)
        volume = np.asarray(canonical.get_fdata(dtype=np.float32))
    except Exception as exc:  # nibabel raises many types for truncated or corrupt files
        raise DatasetError(f"{path}: cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    if volume.ndim == 4 and volume.shape[3] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise DatasetError(f"{path}: expected a 3D volume, got shape {volume.shape}")
    return volume


def canonical_shape(path: str, max_voxels: int | None = DEFAULT_MAX_VOXELS) -> tuple[int, int, int]:
    """The shape a NIfTI volume has after canonical reorientation, read from the header only.

    Refuses a header that declares more voxels than the file holds or than ``max_voxels``.
    """
    import nibabel as nib

    try:
        img = nib.load(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read NIfTI header ({type(exc).__name__}: {exc})") from exc
    check_nifti_size(path, img, max_voxels)
    shape = img.shape[:3] if len(img.shape) >= 3 else ()
    if len(shape) != 3 or (len(img.shape) == 4 and img.shape[3] != 1) or len(img.shape) > 4:
        raise DatasetError(f"{path}: expected a 3D volume, got shape {img.shape}")
    ornt = nib.orientations.io_orientation(img.affine)
    out = [0, 0, 0]
    for in_axis, (out_axis, _flip) in enumerate(ornt):
        out[int(out_axis)] = int(shape[in_axis])
    return out[0], out[1], out[2]


def volume_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """One 2D slice of a canonical volume."""
    if not 0 <= index < volume.shape[axis]:
        raise IndexError(f"slice {index} outside axis {axis} of length {volume.shape[axis]}")
    return np.ascontiguousarray(np.take(volume, index, axis=axis))


@register_reader("nifti")
def _read_nifti_slice(row: Row) -> np.ndarray:
    return volume_slice(load_canonical_volume(str(row["source"])), int(row["slice_axis"]), int(row["slice_index"]))


@register_reader("nifti", mask=True)
def _read_nifti_mask_slice(row: Row) -> np.ndarray:
    volume = load_canonical_volume(str(row["mask_source"]))
    return np.rint(volume_slice(volume, int(row["slice_axis"]), int(row["slice_index"]))).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# DICOM series -> canonical (RAS+) volume in Hounsfield units (CT) or stored units.
# ---------------------------------------------------------------------------------------

SPACING_TOLERANCE = 0.01  # relative deviation of one slice gap from the median gap


def _dicom_files(folder: str) -> list[str]:
    import os

    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        raise DatasetError(f"{folder}: DICOM series folder not found") from None
    except NotADirectoryError:
        raise DatasetError(f"{folder}: a DICOM series must be a folder of slice files") from None
    files = [
        os.path.join(folder, n)
        for n in names
        if not n.startswith(".") and n.upper() != "DICOMDIR" and os.path.isfile(os.path.join(folder, n))
    ]
    return [f for f in files if is_dicom_file(f)]


def is_dicom_file(path: str) -> bool:
    """Whether a file looks like DICOM: the 'DICM' preamble, or a .dcm/.ima name."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or path.lower().endswith((".dcm", ".ima"))


def dicom_series_geometry(folder: str, *, with_pixels: bool = False) -> tuple[list[Any], np.ndarray]:
    """The slices of the one series in ``folder``, sorted along the slice normal, and its RAS affine.

    Refuses (DatasetError naming the file) a folder with no DICOM, several series, an
    unreadable/truncated file, slices of different size or orientation, two slices at
    the same position, or gaps between slices that differ (a missing slice).
    """
    import pydicom

    files = _dicom_files(folder)
    if not files:
        raise DatasetError(f"{folder}: no DICOM files in this folder")
    slices = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=not with_pixels)
        except Exception as exc:  # pydicom raises InvalidDicomError, EOFError, OSError, ...
            raise DatasetError(f"{path}: cannot read DICOM ({type(exc).__name__}: {exc})") from exc
        if "Rows" not in ds or "Columns" not in ds:
            raise DatasetError(f"{path}: DICOM file has no image (no Rows/Columns)")
        slices.append((path, ds))
    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in slices})
    if len(uids) > 1:
        raise DatasetError(f"{folder}: holds {len(uids)} DICOM series ({', '.join(uids[:3])}...); put one series per folder")
    shapes = {(int(ds.Rows), int(ds.Columns)) for _, ds in slices}
    if len(shapes) > 1:
        raise DatasetError(f"{folder}: slices have different sizes {sorted(shapes)}")

    def orientation(path: str, ds: Any) -> np.ndarray:
        iop = ds.get("ImageOrientationPatient")
        return np.asarray([float(v) for v in iop], dtype=np.float64) if iop is not None else np.array([1, 0, 0, 0, 1, 0.0])

    iop = orientation(*slices[0])
    for path, ds in slices[1:]:
        if not np.allclose(orientation(path, ds), iop, atol=1e-4):
            raise DatasetError(f"{path}: slice orientation differs from {slices[0][0]}")
    row_cos, col_cos = iop[:3], iop[3:]
    normal = np.cross(row_cos, col_cos)

    def position(path: str, ds: Any) -> np.ndarray:
        ipp = ds.get("ImagePositionPatient")
        if ipp is None:
            if len(slices) > 1:
                raise DatasetError(f"{path}: no ImagePositionPatient; cannot order the slices of the series")
            return np.zeros(3)
        return np.asarray([float(v) for v in ipp], dtype=np.float64)

    positions = [position(p, ds) for p, ds in slices]
    order = np.argsort([float(pos @ normal) for pos in positions], kind="stable")
    slices = [slices[i] for i in order]
    positions = [positions[i] for i in order]
    first_ds = slices[0][1]
    spacing = first_ds.get("PixelSpacing") or first_ds.get("ImagerPixelSpacing") or [1.0, 1.0]
    row_spacing, col_spacing = float(spacing[0]), float(spacing[1])
    if len(slices) > 1:
        offsets = np.array([float(p @ normal) for p in positions])
        gaps = np.diff(offsets)
        if (np.abs(gaps) < 1e-6).any():
            k = int(np.argmax(np.abs(gaps) < 1e-6))
            raise DatasetError(f"{slices[k + 1][0]}: same slice position as {slices[k][0]} (duplicate slice)")
        median = float(np.median(gaps))
        off = np.abs(gaps - median) > SPACING_TOLERANCE * abs(median) + 1e-4
        if off.any():
            k = int(np.argmax(off))
            raise DatasetError(
                f"{slices[k + 1][0]}: inconsistent slice spacing in series {folder}: gap {gaps[k]:.3f} mm after "
                f"{slices[k][0]} where the median gap is {median:.3f} mm (missing or extra slice?)"
            )
        step = (positions[-1] - positions[0]) / (len(slices) - 1)
    else:
        thickness = float(first_ds.get("SpacingBetweenSlices") or first_ds.get("SliceThickness") or 1.0)
        step = normal * thickness
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_spacing  # voxel axis 0 = column index
    lps[:3, 1] = col_cos * row_spacing  # voxel axis 1 = row index
    lps[:3, 2] = step
    lps[:3, 3] = positions[0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return [ds for _, ds in slices] if with_pixels else [p for p, _ in slices], ras


def dicom_canonical_shape(folder: str) -> tuple[int, int, int]:
    """Shape of the series volume after canonical (RAS+) reorientation, from the headers only."""
    import nibabel as nib
    import pydicom

    files, affine = dicom_series_geometry(folder)
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    shape = (int(ds.Columns), int(ds.Rows), len(files))
    ornt = nib.orientations.io_orientation(affine)
    out = [0, 0, 0]
    for in_axis, (out_axis, _flip) in enumerate(ornt):
        out[int(out_axis)] = int(shape[in_axis])
    return out[0], out[1], out[2]


@lru_cache(maxsize=2)
def load_dicom_volume(folder: str) -> np.ndarray:
    """A DICOM series as a canonical (RAS+) float32 volume; CT in HU (rescale slope/intercept applied)."""
    import nibabel as nib

    datasets, affine = dicom_series_geometry(folder, with_pixels=True)
    planes = []
    for ds in datasets:
        try:
            pixels = ds.pixel_array
        except Exception as exc:
            source = getattr(ds, "filename", folder)
            raise DatasetError(f"{source}: cannot decode DICOM pixels ({type(exc).__name__}: {exc})") from exc
        if pixels.ndim != 2:
            raise DatasetError(f"{getattr(ds, 'filename', folder)}: expected a 2D slice, got pixels of shape {pixels.shape}")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        planes.append(pixels.astype(np.float32) * slope + intercept)
    volume = np.stack(planes, axis=0).transpose(2, 1, 0)  # (columns, rows, slices) = voxel axes of ``affine``
    canonical = nib.as_closest_canonical(nib.Nifti1Image(volume, affine))
    return np.asarray(canonical.dataobj, dtype=np.float32)


@register_reader("dicom_series")
def _read_dicom_slice(row: Row) -> np.ndarray:
    return volume_slice(load_dicom_volume(str(row["source"])), int(row["slice_axis"]), int(row["slice_index"]))


# ---------------------------------------------------------------------------------------
# MATLAB v7.3 (HDF5) .mat files of the Figshare brain tumour dataset: cjdata/{image,label,PID,tumorMask}.
# ---------------------------------------------------------------------------------------


def _open_mat_v73(path: str) -> Any:
    import h5py

    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open ({exc})") from exc
    if not h5py.is_hdf5(path):
        text = head[:116].decode("latin-1", "replace").strip()
        if text.startswith("MATLAB 5.0 MAT-file") or text.startswith("MATLAB 7"):
            raise DatasetError(
                f"{path}: is a MATLAB v5/v7 .mat file, not v7.3 (HDF5); featx reads the v7.3 files as distributed "
                f"(re-save in MATLAB with save(file, 'cjdata', '-v7.3'))"
            )
        raise DatasetError(f"{path}: not a MATLAB v7.3 (HDF5) .mat file (truncated or another format)")
    try:
        return h5py.File(path, "r")
    except Exception as exc:
        raise DatasetError(f"{path}: cannot open .mat (HDF5) file ({type(exc).__name__}: {exc})") from exc


def _mat_field(handle: Any, path: str, name: str) -> np.ndarray:
    key = f"cjdata/{name}"
    if key not in handle:
        raise DatasetError(f"{path}: .mat file has no {key!r} (has {sorted(handle.get('cjdata', {}).keys())})")
    try:
        return np.asarray(handle[key][()])
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read {key} ({type(exc).__name__}: {exc})") from exc


def read_figshare_header(path: str) -> tuple[int, str, tuple[int, int], tuple[int, int] | None]:
    """(label 1..3, patient id, image shape (H, W), tumour-mask shape or None) of one cjdata .mat file."""
    with _open_mat_v73(path) as handle:
        label = _mat_field(handle, path, "label").ravel()
        pid = _mat_field(handle, path, "PID").ravel()
        image = handle.get("cjdata/image")
        if image is None:
            raise DatasetError(f"{path}: .mat file has no 'cjdata/image'")
        mask = handle.get("cjdata/tumorMask")
        # MATLAB stores column-major: an HDF5 dataset of shape (W, H) is the MATLAB (H, W) image.
        image_shape = tuple(int(s) for s in image.shape[::-1])
        mask_shape = tuple(int(s) for s in mask.shape[::-1]) if mask is not None else None
    if label.size != 1 or not np.isfinite(label[0]):
        raise DatasetError(f"{path}: cjdata/label is {label!r}, expected one number")
    patient = "".join(chr(int(c)) for c in pid if int(c) != 0).strip() if pid.dtype.kind in "uif" else str(pid)
    if not patient:
        raise DatasetError(f"{path}: cjdata/PID is empty")
    return int(label[0]), patient, image_shape, mask_shape  # type: ignore[return-value]


@register_reader("mat_v73")
def _read_mat_image(row: Row) -> np.ndarray:
    path = str(row["source"])
    with _open_mat_v73(path) as handle:
        image = _mat_field(handle, path, "image")
    if image.ndim != 2:
        raise DatasetError(f"{path}: cjdata/image has shape {image.shape}, expected 2D")
    return np.ascontiguousarray(image.T).astype(np.float32)


@register_reader("mat_v73", mask=True)
def _read_mat_mask(row: Row) -> np.ndarray:
    path = str(row["mask_source"])
    with _open_mat_v73(path) as handle:
        mask = _mat_field(handle, path, "tumorMask")
    return (np.ascontiguousarray(mask.T) > 0).astype(np.uint8)


# ---------------------------------------------------------------------------------------
# Montgomery County: ManualMask/leftMask/X.png + ManualMask/rightMask/X.png -> one 3-class mask.
# ---------------------------------------------------------------------------------------


def montgomery_right_mask(left_mask: str) -> str:
    """The right-lung mask path that goes with a left-lung mask path."""
    from pathlib import Path

    left = Path(left_mask)
    return str(left.parent.parent / "rightMask" / left.name)


@register_reader("montgomery", mask=True)
def _read_montgomery_mask(row: Row) -> np.ndarray:
    """0 background, 1 left lung, 2 right lung (the patient's left and right, as the folders name them)."""
    left_path = str(row["mask_source"])
    right_path = montgomery_right_mask(left_path)
    left = read_image_file(left_path)
    right = read_image_file(right_path)
    left = left[..., 0] if left.ndim == 3 else left
    right = right[..., 0] if right.ndim == 3 else right
    if left.shape != right.shape:
        raise DatasetError(f"{right_path}: right-lung mask shape {right.shape} differs from left {left.shape} ({left_path})")
    mask = np.zeros(left.shape, dtype=np.uint8)
    mask[left > 0] = 1
    mask[right > 0] = 2
    return mask


def image_file_shape(path: str) -> tuple[int, int]:
    """(H, W) of a PNG/JPEG from its header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            width, height = img.size
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read image header ({exc})") from exc
    return int(height), int(width)

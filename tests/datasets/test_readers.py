import shutil

import nibabel as nib
import numpy as np
import pytest

from featx.datasets import readers
from featx.datasets.index import DatasetError
from featx.datasets.readers import (
    MASK_READERS,
    READERS,
    canonical_shape,
    dicom_canonical_shape,
    load_dicom_volume,
    load_sample,
    read_figshare_header,
    read_image_file,
)
from tests.datasets.fixtures import (
    pattern,
    truncate,
    write_dicom_series,
    write_jpeg,
    write_mat_v5,
    write_mat_v73,
    write_nifti,
    write_png,
)


def row(source, reader="image", **extra):
    base = {"source": str(source), "reader": reader, "slice_index": -1, "slice_axis": -1, "mask_source": "",
            "mask_reader": ""}
    return base | extra


def test_registered_readers():
    assert {"image", "nifti", "dicom_series", "mat_v73"} <= set(READERS)
    assert {"image", "nifti", "mat_v73", "montgomery"} <= set(MASK_READERS)


# -------- 2D images --------------------------------------------------------------------

def test_png_8_and_16_bit_and_jpeg(tmp_path):
    img8 = pattern(1)
    assert np.array_equal(read_image_file(str(write_png(tmp_path / "a.png", img8))), img8.astype(np.float32))
    img16 = (pattern(0).astype(np.uint16) * 200)
    out = read_image_file(str(write_png(tmp_path / "b.png", img16)))
    assert out.max() > 255 and out.dtype == np.float32
    jpg = read_image_file(str(write_jpeg(tmp_path / "c.jpg", img8)))
    assert jpg.shape == (16, 16)
    rgb = read_image_file(str(write_png(tmp_path / "d.png", np.stack([img8] * 3, -1))))
    assert rgb.shape == (16, 16, 3)


def test_missing_and_truncated_png(tmp_path):
    with pytest.raises(DatasetError, match="missing.png: file not found"):
        load_sample(row(tmp_path / "missing.png"))
    path = truncate(write_png(tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)))
    with pytest.raises(DatasetError, match="t.png: cannot decode"):
        load_sample(row(path))


def test_unknown_reader(tmp_path):
    with pytest.raises(DatasetError, match="unknown reader"):
        load_sample(row(tmp_path / "x", reader="nope"))


def test_mask_shape_mismatch_names_both_files(tmp_path):
    image = write_png(tmp_path / "img.png", pattern(0, 16))
    mask = write_png(tmp_path / "mask.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetError, match=r"mask.png: mask shape \(8, 8\) differs .*img.png"):
        load_sample(row(image, mask_source=str(mask), mask_reader="image"))


# -------- NIfTI ---------------------------------------------------------------------------

def _nifti_row(path, k, axis=2, mask=""):
    return row(path, "nifti", slice_index=k, slice_axis=axis, mask_source=str(mask), mask_reader="nifti" if mask else "")


def test_left_right_flipped_nifti_gives_identical_slices(tmp_path):
    volume = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    affine = np.diag([2.0, 1.5, 3.0, 1.0])
    a = write_nifti(tmp_path / "ras.nii.gz", volume, affine)
    flip = affine.copy()
    flip[0, 0] = -2.0
    flip[0, 3] = 2.0 * 3  # same world positions, stored right-to-left
    b = write_nifti(tmp_path / "las.nii.gz", volume[::-1], flip)
    assert canonical_shape(str(a)) == canonical_shape(str(b)) == (4, 5, 3)
    for axis in range(3):
        for k in range(volume.shape[axis]):
            sa, _ = load_sample(_nifti_row(a, k, axis))
            sb, _ = load_sample(_nifti_row(b, k, axis))
            assert np.array_equal(sa, sb)


def test_nifti_with_nans_is_refused(tmp_path):
    volume = np.ones((4, 4, 2), dtype=np.float32)
    volume[1, 1, 0] = np.nan
    path = write_nifti(tmp_path / "nan.nii.gz", volume)
    with pytest.raises(DatasetError, match="nan.nii.gz: pixel values contain NaN"):
        load_sample(_nifti_row(path, 0))
    load_sample(_nifti_row(path, 1))  # the other slice is fine


def test_truncated_nifti(tmp_path):
    path = truncate(write_nifti(tmp_path / "cut.nii.gz", np.random.default_rng(0).normal(size=(16, 16, 8))))
    with pytest.raises(DatasetError, match="cut.nii.gz: cannot read NIfTI"):
        load_sample(_nifti_row(path, 0))
    with pytest.raises(DatasetError, match="file not found"):
        canonical_shape(str(tmp_path / "none.nii.gz"))


def test_nifti_mask_slices_go_with_image_slices(tmp_path):
    image = np.random.default_rng(0).normal(size=(6, 5, 4)).astype(np.float32)
    label = (image > 0).astype(np.uint8)
    affine = np.diag([-1.0, 1.0, 2.0, 1.0])  # LAS on disk
    i = write_nifti(tmp_path / "i.nii.gz", image, affine)
    m = write_nifti(tmp_path / "m.nii.gz", label, affine)
    for k in range(4):
        img, mask = load_sample(_nifti_row(i, k, 2, m))
        assert np.array_equal(mask, (img > 0).astype(np.uint8))


def test_nibabel_shipped_images():
    from nibabel.testing import data_path

    anat = f"{data_path}/anatomical.nii"
    shape = canonical_shape(anat)
    assert shape == nib.as_closest_canonical(nib.load(anat)).shape[:3]
    img, _ = load_sample(_nifti_row(anat, shape[2] // 2, 2))
    assert img.shape == shape[:2] and np.isfinite(img).all()
    with pytest.raises(DatasetError, match="expected a 3D volume"):
        canonical_shape(f"{data_path}/example4d.nii.gz")


# -------- DICOM ---------------------------------------------------------------------------

def test_pydicom_shipped_ct_in_hounsfield(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    src = get_testdata_file("CT_small.dcm")
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(src, folder / "CT_small.dcm")
    ds = pydicom.dcmread(src)
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    volume = load_dicom_volume(str(folder))
    assert volume.shape[2] == 1 and sorted(volume.shape[:2]) == sorted(expected.shape)
    assert np.isclose(volume.mean(), expected.mean()) and volume.min() == expected.min()
    assert volume.min() < 0  # HU, not stored values


def test_pydicom_shipped_mr_reads(tmp_path):
    from pydicom.data import get_testdata_file

    folder = tmp_path / "mr"
    folder.mkdir()
    shutil.copy(get_testdata_file("MR_small.dcm"), folder / "MR_small.dcm")
    assert dicom_canonical_shape(str(folder))[2] == 1
    img, _ = load_sample(row(folder, "dicom_series", slice_index=0, slice_axis=2))
    assert img.shape == (64, 64)


def test_dicom_series_order_hu_and_orientation(tmp_path):
    stored = np.stack([np.full((6, 5), 1000 + 10 * k, np.uint16) for k in range(4)])
    stored[:, 0, 0] = 2000  # corner marker: row 0, column 0
    folder = write_dicom_series(tmp_path / "s", stored, slope=2.0, intercept=-1024.0, spacing=(2.5, 0.8, 0.8))
    assert dicom_canonical_shape(str(folder)) == (5, 6, 4)
    for k in range(4):
        img, _ = load_sample(row(folder, "dicom_series", slice_index=k, slice_axis=2))
        # LPS (identity orientation) -> RAS flips x and y; canonical slice = pixel.T flipped on both axes
        expected = (stored[k].astype(np.float32) * 2.0 - 1024.0).T[::-1, ::-1]
        assert np.array_equal(img, expected)
    # the same data written as a NIfTI with the equivalent RAS affine gives the same slices
    ras_volume = (stored.astype(np.float32) * 2.0 - 1024.0).transpose(2, 1, 0)
    nii = write_nifti(tmp_path / "same.nii.gz", ras_volume, np.diag([-0.8, -0.8, 2.5, 1.0]))
    for k in range(4):
        a, _ = load_sample(row(folder, "dicom_series", slice_index=k, slice_axis=2))
        b, _ = load_sample(_nifti_row(nii, k))
        assert np.array_equal(a, b)


def test_dicom_inconsistent_spacing_names_the_file(tmp_path):
    stored = np.ones((4, 4, 4), np.uint16)
    folder = write_dicom_series(tmp_path / "gap", stored, positions=[0.0, 1.0, 2.0, 4.0])
    with pytest.raises(DatasetError, match=r"IM0001.dcm: inconsistent slice spacing"):
        dicom_canonical_shape(str(folder))


def test_dicom_two_series_truncated_and_empty(tmp_path):
    folder = tmp_path / "two"
    write_dicom_series(folder / "a", np.ones((2, 4, 4), np.uint16), series_uid="1.2.3")
    write_dicom_series(folder / "b", np.ones((2, 4, 4), np.uint16), series_uid="1.2.4")
    for f in (folder / "b").iterdir():
        f.rename(folder / "a" / f"b_{f.name}")
    with pytest.raises(DatasetError, match="holds 2 DICOM series"):
        dicom_canonical_shape(str(folder / "a"))
    good = write_dicom_series(tmp_path / "cut", np.ones((3, 8, 8), np.uint16))
    truncate(good / "IM0002.dcm", 0.3)
    with pytest.raises(DatasetError, match="IM0002.dcm"):
        load_dicom_volume(str(good))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no DICOM files"):
        dicom_canonical_shape(str(tmp_path / "empty"))


# -------- Figshare .mat v7.3 --------------------------------------------------------------

def test_mat_v73_image_label_pid_and_mask(tmp_path):
    image = np.arange(12 * 10, dtype=np.int16).reshape(12, 10)
    mask = np.zeros((12, 10), np.uint8)
    mask[2:5, 3:6] = 1
    path = write_mat_v73(tmp_path / "1.mat", image, 2, "MR040", mask)
    assert read_figshare_header(str(path)) == (2, "MR040", (12, 10), (12, 10))
    img, m = load_sample(row(path, "mat_v73", mask_source=str(path), mask_reader="mat_v73"))
    assert np.array_equal(img, image.astype(np.float32))  # column-major storage transposed back
    assert np.array_equal(m, mask)


def test_mat_v5_is_refused_clearly(tmp_path):
    path = write_mat_v5(tmp_path / "old.mat", np.zeros((4, 4)))
    with pytest.raises(DatasetError, match="old.mat: is a MATLAB v5/v7 .mat file, not v7.3"):
        load_sample(row(path, "mat_v73"))


def test_mat_truncated_and_missing(tmp_path):
    path = truncate(write_mat_v73(tmp_path / "t.mat", np.zeros((64, 64), np.int16), 1, "1"), 0.3)
    with pytest.raises(DatasetError, match="t.mat"):
        read_figshare_header(str(path))
    with pytest.raises(DatasetError, match="file not found"):
        load_sample(row(tmp_path / "none.mat", "mat_v73"))


# -------- Montgomery --------------------------------------------------------------------

def test_montgomery_masks_merge_into_three_classes(tmp_path):
    left = np.zeros((8, 8), np.uint8)
    left[:, 5:] = 255
    right = np.zeros((8, 8), np.uint8)
    right[:, :3] = 255
    write_png(tmp_path / "ManualMask" / "leftMask" / "x.png", left)
    write_png(tmp_path / "ManualMask" / "rightMask" / "x.png", right)
    image = write_png(tmp_path / "CXR_png" / "x.png", pattern(0, 8))
    _, mask = load_sample(row(image, mask_source=str(tmp_path / "ManualMask" / "leftMask" / "x.png"),
                              mask_reader="montgomery"))
    assert set(np.unique(mask)) == {0, 1, 2}
    assert (mask[:, 5:] == 1).all() and (mask[:, :3] == 2).all() and (mask[:, 3:5] == 0).all()


def test_readers_are_picklable():
    import pickle

    for fn in list(READERS.values()) + list(MASK_READERS.values()):
        assert pickle.loads(pickle.dumps(fn)) is fn
    assert readers.load_sample is pickle.loads(pickle.dumps(readers.load_sample))

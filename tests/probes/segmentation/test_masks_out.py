"""Saved masks overlay their source: NIfTI with the source affine (3D), PNG at the source size (2D)."""

import nibabel as nib
import numpy as np
from PIL import Image

from featx.datasets.preprocess import resize_mask
from featx.datasets.readers import load_canonical_volume, volume_slice
from featx.probes.segmentation.data import open_segmentation
from featx.probes.segmentation.masks_out import save_masks, volume_to_source


def test_nifti_of_a_non_canonical_source_overlays_it_voxel_for_voxel(tmp_path):
    rng = np.random.default_rng(0)
    shape = (10, 12, 7)
    label = rng.integers(0, 3, shape).astype(np.uint8)
    # voxel axes (j, k, i) -> world, with x flipped: not RAS, so featx slices a reoriented copy
    affine = np.array([[0, 0, -0.9, 30.0], [1.1, 0, 0, -20.0], [0, 2.5, 0, 5.0], [0, 0, 0, 1]])
    source = tmp_path / "case.nii.gz"
    nib.save(nib.Nifti1Image(label, affine), source)
    axis = 2
    canonical = load_canonical_volume(str(source))
    size = 2 * max(canonical.shape)  # predictions live at the extraction size, a multiple: nearest is exact
    slices = np.stack([resize_mask(volume_slice(canonical, axis, i), size) for i in range(canonical.shape[axis])])
    array, written_affine = volume_to_source(slices, str(source), axis)
    assert array.shape == shape and np.array_equal(written_affine, nib.load(source).affine)
    assert np.allclose(written_affine, affine, atol=1e-6)
    assert np.array_equal(array, label)


def test_save_masks_from_a_store_writes_one_nifti_per_test_volume(shapes_3d, tmp_path):
    data = open_segmentation(shapes_3d)
    test = data.positions("test")
    truth = data.read_masks(test, sealed_ok=True)
    files = save_masks(data, test, truth, tmp_path / "out")
    assert sorted(f.name for f in files) == sorted(f"{v}.nii.gz" for v in set(data.volume_ids[test]))
    for path in files:
        written = nib.load(path)
        source = nib.load(data.sources[test][data.volume_ids[test] == path.name.removesuffix(".nii.gz")][0])
        assert written.shape == source.shape and np.allclose(written.affine, source.affine)
        reference = np.asarray(nib.load(source.get_filename().replace("imagesTr", "labelsTr")).dataobj)
        agree = (np.asarray(written.dataobj) == reference).mean()
        assert agree > 0.97  # the store's masks were resized 48 -> 56 px and back with nearest neighbour


def test_save_masks_2d_writes_pngs_at_the_source_size(tmp_path):
    from featx.datasets import build_index
    from tests.probes.segmentation.conftest import extract_seg, make_shapes_montgomery

    index = build_index("montgomery", make_shapes_montgomery(tmp_path / "d", n_images=6, size=28), val_fraction=0.2, test_fraction=0.4)
    data = open_segmentation(extract_seg(index, tmp_path / "c", n_last=1))
    test = data.positions("test")
    pred = data.read_masks(test, sealed_ok=True)
    files = save_masks(data, test, pred, tmp_path / "out")
    assert len(files) == len(test)
    for path in files:
        written = np.asarray(Image.open(path))
        assert written.shape == (28, 28) and written.dtype == np.uint8 and set(np.unique(written)) <= {0, 1, 2}

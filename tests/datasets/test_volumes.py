"""Volume preprocessing: orientation, spacing, HU windows as channels, MRI clip, crop/pad, tiles that cover once."""

import numpy as np
import pytest

from featx.datasets.index import DatasetError
from featx.datasets.volumes import (
    VolumePrep,
    crop_pad,
    intensity,
    merge_tiles,
    prepare_volume,
    read_canonical,
    tile_grid,
    tile_starts,
)
from tests.volume_data import write_nifti


def test_resampling_to_the_target_spacing_and_ras_orientation(tmp_path):
    data = np.zeros((10, 12, 14), np.float32)
    data[0, 0, 0] = 1000.0
    import nibabel as nib

    affine = np.diag([-2.0, 2.0, 2.0, 1.0])  # x flipped (LAS): as_closest_canonical flips it back
    nib.save(nib.Nifti1Image(data, affine), str(tmp_path / "v.nii.gz"))
    canonical, spacing = read_canonical(tmp_path / "v.nii.gz")
    assert spacing == (2.0, 2.0, 2.0) and canonical[-1, 0, 0] == 1000.0  # the voxel moved to the RAS end
    prep = VolumePrep(tile=8, shape=(24, 24, 32), spacing=(1.0, 1.0, 1.0), windows=((0.0, 100.0),))
    image, _ = prepare_volume(tmp_path / "v.nii.gz", prep)
    assert image.shape == (1, 24, 24, 32)  # 20 x 24 x 28 voxels at 1 mm, padded to the shape
    assert prep.key()["spacing"] == [1.0, 1.0, 1.0]


def test_multi_window_ct_gives_one_channel_per_window_and_mri_clips_percentiles():
    volume = np.linspace(-1000, 1000, 1000, dtype=np.float32).reshape(10, 10, 10)
    prep = VolumePrep(tile=8, windows=((-1000.0, 0.0), (0.0, 1000.0)), spacing=None)
    out = intensity(volume, prep)
    assert out.shape == (2, 10, 10, 10) and prep.channels == 2
    assert out[0].max() == 1.0 and out[1][volume <= 0].max() == 0.0 and out.min() >= 0 and out.max() <= 1
    mri = VolumePrep(tile=8, windows=(), mri_clip=(10.0, 90.0), spacing=None)
    scaled = intensity(volume, mri)
    assert scaled.shape == (1, 10, 10, 10) and (scaled == 0).mean() == pytest.approx(0.1, abs=0.01)
    assert mri.key()["intensity"] == "mri_percentile_clip" != prep.key()["intensity"]


def test_crop_pad_keeps_the_centre():
    volume = np.arange(6 * 6 * 6).reshape(6, 6, 6)
    assert np.array_equal(crop_pad(volume, (4, 4, 4)), volume[1:5, 1:5, 1:5])
    padded = crop_pad(volume, (8, 8, 8))
    assert np.array_equal(padded[1:7, 1:7, 1:7], volume) and padded[0].sum() == 0


def test_tiles_cover_every_voxel_once_after_merging_on_a_volume_larger_than_the_input():
    shape, tile, stride = (40, 48, 56), 16, 4
    starts = tile_grid(shape, tile, overlap=0.5, stride=stride)
    assert len(starts) > 8 and all(s % stride == 0 for start in starts for s in start)
    volume = np.random.default_rng(0).normal(size=(*shape, 3)).astype(np.float32)
    # an "encoder" that returns its input at stride 1: merging gives the volume back exactly
    maps = [volume[z:z + tile, y:y + tile, x:x + tile] for z, y, x in starts]
    assert np.allclose(merge_tiles(maps, starts, shape, 1), volume, atol=1e-6)
    # each tile contributes weight 1 / (tiles covering the voxel): the weights sum to one at every voxel
    ones = [np.ones((tile // stride,) * 3 + (1,), np.float32) for _ in starts]
    assert np.array_equal(merge_tiles(ones, starts, shape, stride), np.ones((10, 12, 14, 1), np.float32))
    counts = np.zeros(shape)
    for z, y, x in starts:
        counts[z:z + tile, y:y + tile, x:x + tile] += 1
    assert counts.min() >= 1 and counts.max() > 1  # covered everywhere, and the tiles do overlap


def test_tile_starts_end_flush_and_bad_sizes_are_refused():
    assert tile_starts(40, 16, 0.5, 4) == [0, 8, 16, 24]
    assert tile_starts(36, 16, 0.0, 4) == [0, 16, 20]
    with pytest.raises(DatasetError, match="multiples of the encoder stride 8"):
        tile_starts(36, 16, 0.0, 8)
    with pytest.raises(DatasetError, match="at least the tile"):
        VolumePrep(tile=32, shape=(16, 32, 32))


def test_a_mask_follows_its_volume(tmp_path):
    volume = np.zeros((8, 8, 8), np.float32)
    mask = np.zeros((8, 8, 8), np.uint8)
    mask[2:4, 2:4, 2:4] = 1
    write_nifti(tmp_path / "v.nii.gz", volume, (2.0, 2.0, 2.0))
    write_nifti(tmp_path / "m.nii.gz", mask, (2.0, 2.0, 2.0))
    prep = VolumePrep(tile=16, spacing=(1.0, 1.0, 1.0), windows=((0.0, 1.0),))
    image, out = prepare_volume(tmp_path / "v.nii.gz", prep, tmp_path / "m.nii.gz")
    assert image.shape == (1, 16, 16, 16) and out.shape == (16, 16, 16) and out.sum() == 4**3

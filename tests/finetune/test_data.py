import numpy as np
import pytest
import torch

from featx.datasets import build_index
from featx.datasets.preprocess import PreprocessConfig
from featx.evaluation.selection import SealedSplitError
from featx.finetune.config import FinetuneError
from featx.finetune.data import as_rgb, load_pixels, require_splits, sealed_units
from featx.pipeline.reader import SampleDataset

from .conftest import SIZE, planted_csv, planted_shapes_msd


def test_pixels_come_through_the_reader_and_a_bad_file_is_a_named_failed_row(tmp_path):
    csv = planted_csv(tmp_path, n_patients=8)
    (csv.parent / "images" / "p1_0.png").write_bytes(b"not a png")
    index = build_index("csv", csv)
    pixels = load_pixels(index, PreprocessConfig.for_modality(index.modality, SIZE))
    assert pixels.n == len(index.table) - 1 and pixels.images.shape[1:] == (1, SIZE, SIZE)  # grey: one plane kept
    reader = SampleDataset(index.table, PreprocessConfig.for_modality(index.modality, SIZE), with_masks=False)
    first = int(np.flatnonzero(index.table.sample_id == pixels.ids[0])[0])
    assert torch.equal(as_rgb(pixels.images[:1])[0], reader[first]["pixels"])
    assert len(pixels.failures) == 1 and "p1_0.png" in pixels.failures[0]
    assert "p1_0.png" not in " ".join(index.table.loc[index.table.sample_id.isin(pixels.ids), "source"])
    units = sealed_units(pixels, index)
    splits = units.splits
    assert units.level == "sample" and all(len(m) == 1 for m in units.members)
    assert not np.isnan(splits.train.labels).any()
    with splits.selecting(), pytest.raises(SealedSplitError):
        splits.test_inputs()


def test_missing_validation_rows_are_refused(tmp_path):
    index = build_index("csv", planted_csv(tmp_path, n_patients=8, drop_val=True))
    pixels = load_pixels(index, PreprocessConfig.for_modality(index.modality, SIZE))
    with pytest.raises(FinetuneError, match="validation split"):
        require_splits(pixels.split, index.dataset)


def test_volumes_are_scored_as_units_of_their_slices(tmp_path):
    from tests.datasets.fixtures import make_csv_3d

    index = build_index("csv", make_csv_3d(tmp_path, n_patients=6, shape=(16, 16, 3)))
    pixels = load_pixels(index, PreprocessConfig.for_modality(index.modality, 28))
    units = sealed_units(pixels, index)
    assert units.level == "volume" and len(units.members) == 6 and all(len(m) == 3 for m in units.members)
    for unit in units.splits.train.rows:
        assert len(set(pixels.volumes[units.members[unit]])) == 1
    assert sorted(units.pixel_rows(np.arange(6)).tolist()) == list(range(pixels.n))


def test_colour_images_keep_three_planes(tmp_path):
    from tests.datasets.fixtures import write_png

    csv = planted_csv(tmp_path, n_patients=8)
    rgb = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    write_png(csv.parent / "images" / "p3_1.png", rgb)
    index = build_index("csv", csv)
    pixels = load_pixels(index, PreprocessConfig.for_modality(index.modality, SIZE))
    assert pixels.images.shape[1] == 3
    row = int(np.flatnonzero(pixels.ids == index.table.sample_id[index.table.source.str.endswith("p3_1.png")].iloc[0])[0])
    assert pixels.images[row, 0].float().mean() > pixels.images[row, 1].float().mean()
    assert torch.equal(pixels.images[0, 0], pixels.images[0, 2])  # grey images before it were widened


@pytest.mark.parametrize("layout", ["csv_2d_with_a_bad_file", "msd_3d_with_masks"])
def test_the_pixel_store_gives_exactly_the_readers_pixels(tmp_path, layout):
    from featx.pipeline.pixel_build import build_pixel_store

    if layout == "msd_3d_with_masks":
        index = build_index("msd", planted_shapes_msd(tmp_path / "data", n_volumes=6))
    else:
        csv = planted_csv(tmp_path / "data", n_patients=8)
        (csv.parent / "images" / "p2_1.png").write_bytes(b"not a png")
        index = build_index("csv", csv)
    preprocess = PreprocessConfig.for_modality(index.modality, SIZE)
    readers = load_pixels(index, preprocess, cache=tmp_path / "cache")  # no pixel store there yet
    assert readers.source["pixel_source"] == "readers" and "no pixel store" in readers.source["pixel_note"]
    built = build_pixel_store(index, preprocess, tmp_path / "cache", workers=0, progress=False)
    stored = load_pixels(index, preprocess, cache=tmp_path / "cache")
    assert stored.source == {"pixel_source": "pixel_store", "pixel_store": str(built.path), "pixel_note": None}
    assert torch.equal(stored.images, readers.images)
    for name in ("labels", "patients", "split", "ids", "volumes", "slices"):
        assert np.array_equal(getattr(stored, name), getattr(readers, name), equal_nan=name == "labels"), name
    assert stored.failures == readers.failures
    if readers.masks is not None:
        every = np.arange(readers.n)
        assert torch.equal(stored.masks.read(every, sealed_ok=True), readers.masks.read(every, sealed_ok=True))


def test_a_pixel_store_of_older_files_is_passed_over_for_the_readers(tmp_path):
    import os

    from featx.pipeline.pixel_build import build_pixel_store

    csv = planted_csv(tmp_path / "data", n_patients=8)
    index = build_index("csv", csv)
    preprocess = PreprocessConfig.for_modality(index.modality, SIZE)
    build_pixel_store(index, preprocess, tmp_path / "cache", workers=0, progress=False)
    edited = csv.parent / "images" / "p0_0.png"
    os.utime(edited, ns=(0, 0))  # the file changed since the store was built
    pixels = load_pixels(index, preprocess, cache=tmp_path / "cache")
    assert pixels.source["pixel_source"] == "readers" and "older files" in pixels.source["pixel_note"]


def test_test_masks_are_sealed_and_bad_class_ids_are_refused(tmp_path):
    from tests.datasets.fixtures import write_nifti

    task = planted_shapes_msd(tmp_path / "data", n_volumes=6)
    index = build_index("msd", task)
    pixels = load_pixels(index, PreprocessConfig.for_modality(index.modality, SIZE))
    assert pixels.masks.read(pixels.rows("train")).shape == (pixels.rows("train").size, SIZE, SIZE)
    with pytest.raises(SealedSplitError, match="test masks are sealed"):
        pixels.masks.read(pixels.rows("test")[:1])
    label = np.zeros((32, 32, 4), dtype=np.uint8)
    label[4:12, 4:12, 1] = 3
    write_nifti(task / "labelsTr" / "shapes_0.nii.gz", label)
    with pytest.raises(FinetuneError, match=r"the mask of shapes_0\S* holds class id 3 but the dataset has 2 classes"):
        load_pixels(build_index("msd", task), PreprocessConfig.for_modality(index.modality, SIZE))

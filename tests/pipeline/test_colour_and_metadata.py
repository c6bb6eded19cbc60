"""Real-world CSV data through the pixel store: colour and CMYK JPEGs beside grey PNGs, metadata columns."""

import numpy as np
import pytest
from PIL import Image

from featx.cache import FeatureStore
from featx.cache.pixels import PixelStore
from featx.datasets import build_index
from featx.datasets.preprocess import PreprocessConfig, to_model_input
from featx.datasets.readers import read_image_file
from featx.pipeline.pixel_feed import PixelDataset
from tests.conftest import TINY_SIZE
from tests.pipeline.test_pixel_feed import assert_same_stores, run


@pytest.fixture()
def mixed_csv(tmp_path):
    """12 images: grey PNGs, colour JPEGs and CMYK JPEGs, with age/sex/view/notes columns."""
    rng = np.random.default_rng(0)
    lines = ["path,patient_id,split,finding,age,sex,view,notes"]
    for i in range(12):
        kind = ("grey", "rgb", "cmyk")[i % 3]
        if kind == "grey":
            name = f"{i}.png"
            Image.fromarray(rng.integers(0, 255, (40, 36), dtype=np.uint8)).save(tmp_path / name)
        else:
            name = f"{i}.jpg"
            rgb = rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)
            rgb[..., 0] = 255  # strongly red: the channels differ
            image = Image.fromarray(rgb)
            (image.convert("CMYK") if kind == "cmyk" else image).save(tmp_path / name, quality=95)
        split = ("train", "val", "test")[(i // 2) % 3]
        lines.append(f"{name},P{i // 2},{split},{i % 2},{40 + i},{'MF'[i % 2]},{'PA' if i % 4 else 'AP'},"
                     f"\"free text, {i}\"")
    (tmp_path / "mixed.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "mixed.csv"


def test_cmyk_jpeg_is_read_as_rgb(mixed_csv):
    with Image.open(mixed_csv.parent / "2.jpg") as img:
        assert img.mode == "CMYK"
    assert read_image_file(str(mixed_csv.parent / "2.jpg")).shape == (40, 36, 3)


def test_colour_and_metadata_through_the_pixel_store_equal_the_raw_files(mixed_csv, tmp_path):
    index = build_index("csv", mixed_csv)
    assert index.label_names == ["finding"] and list(index.metadata.columns) == ["age", "sex", "view", "notes"]
    raw = run(index, tmp_path / "raw", pixels=False)
    fed = run(index, tmp_path / "fed")
    assert fed.pixel_store is not None and fed.key == raw.key
    store = FeatureStore.open(fed.path)
    assert store.valid.all()  # no colour image failed
    assert_same_stores(raw.path, fed.path)  # the backbone saw the same 3 channels both ways

    pixels = PixelStore.open(fed.pixel_store)
    is_colour = index.table["source"].str.endswith(".jpg").to_numpy()
    np.testing.assert_array_equal(pixels.channels, np.where(is_colour, 3, 1))
    preprocess = PreprocessConfig.for_modality("other", TINY_SIZE)
    for row in (0, 1, 2):
        expected = to_model_input(read_image_file(index.table["source"][row]), preprocess)
        np.testing.assert_array_equal(pixels.read_colour([row])[0], expected)
    assert PixelDataset(pixels)[1]["image"].shape == (3, TINY_SIZE, TINY_SIZE)

    meta = store.metadata
    assert list(meta.columns) == ["age", "sex", "view", "notes"] and len(meta) == store.n_rows
    by_id = dict(zip(store.index["sample_id"], meta["notes"]))
    assert by_id["5.jpg"] == "free text, 5"


def test_a_grey_dataset_writes_no_colour_chunks(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["path,patient_id,split,finding"]
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,P{i},{('train', 'val', 'test')[i % 3]},{i % 2}")
    (tmp_path / "grey.csv").write_text("\n".join(lines) + "\n")
    fed = run(build_index("csv", tmp_path / "grey.csv"), tmp_path / "cache")
    pixels = PixelStore.open(fed.pixel_store)
    assert not pixels.has_colour and (pixels.channels == 1).all()
    assert not [p for p in (pixels.path / "colour").rglob("*") if p.is_file() and p.name != "zarr.json"]


def test_a_metadata_change_alone_does_not_re_extract(mixed_csv, tmp_path):
    first = run(build_index("csv", mixed_csv), tmp_path / "cache")
    mixed_csv.write_text(mixed_csv.read_text().replace("free text, 5", "edited note"))
    again = run(build_index("csv", mixed_csv), tmp_path / "cache")
    assert again.key == first.key and again.reused and again.rows_extracted == 0
    assert "free text, 5" in FeatureStore.open(again.path).metadata["notes"].tolist()  # as built


def test_device_batch_keeps_colour_channels_and_resizes_them():
    import torch

    from featx.pipeline.pixel_feed import device_batch

    colour = torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8)
    same = device_batch(colour, torch.device("cpu"))
    assert same.dtype == torch.uint8 and torch.equal(same, colour)
    resized = device_batch(colour, torch.device("cpu"), size=16)
    assert resized.shape == (2, 3, 16, 16) and not torch.equal(resized[:, 0], resized[:, 1])
    grey = device_batch(colour[:, 0], torch.device("cpu"), size=16)
    assert grey.shape == (2, 3, 16, 16) and torch.equal(grey[:, 0], grey[:, 2])


def test_fine_tuning_reads_the_same_colour_pixels_from_the_store_as_from_the_files(mixed_csv, tmp_path):
    import torch

    from featx.finetune.data import load_pixels

    index = build_index("csv", mixed_csv)
    run(index, tmp_path / "cache")
    preprocess = PreprocessConfig.for_modality("other", TINY_SIZE)
    stored = load_pixels(index, preprocess, cache=tmp_path / "cache")
    decoded = load_pixels(index, preprocess)
    assert stored.source["pixel_source"] == "pixel_store" and decoded.source["pixel_source"] == "readers"
    assert stored.images.shape[1] == 3 and torch.equal(stored.images, decoded.images)

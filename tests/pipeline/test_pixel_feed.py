import numpy as np
import pytest
import torch

import featx.datasets.readers as readers
from featx.cache import FeatureStore
from featx.cache.pixels import PixelStore
from featx.datasets import build_index
from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.extract import extract
from featx.pipeline.pixel_build import build_pixel_store
from featx.pipeline.pixel_feed import PixelCache, PixelDataset, device_batch
from tests.conftest import TINY_SIZE, TINY_VIT, tiny_backbone
from tests.datasets.fixtures import make_msd
from tests.pipeline.test_extract import store_arrays


def run(index, cache, backbone=None, pixels=True, **kwargs):
    kwargs = {"batch_size": 8, "num_workers": 0, "progress": False, "block_rows": 16} | kwargs
    cache_obj = PixelCache(cache, workers=0, progress=False) if pixels else None
    return extract(index, backbone or tiny_backbone(), PreprocessConfig.for_modality(index.modality, TINY_SIZE),
                   cache, pixel_cache=cache_obj, **kwargs)


def last_block_only():
    """A second backbone: the tiny ViT storing only its last block."""
    from featx.backbones import load_backbone

    return load_backbone("dinov2_vits14", img_size=TINY_SIZE, random_init=True, n_last=1, model_overrides=TINY_VIT)


def assert_same_stores(a, b):
    expected, actual = store_arrays(a), store_arrays(b)
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)


@pytest.mark.parametrize("dataset", ["xray", "msd"])
def test_features_through_the_pixel_store_equal_features_from_the_raw_files(demo_data, tmp_path, dataset):
    if dataset == "xray":
        index = build_index("csv", demo_data.xray_csv, modality="xray")
    else:
        index = build_index("msd", make_msd(tmp_path / "data"))
    raw = run(index, tmp_path / "raw", pixels=False)
    fed = run(index, tmp_path / "fed")
    assert raw.pixel_store is None and fed.pixel_store is not None and fed.key == raw.key
    assert fed.rows_extracted == len(index) and fed.steady.times.total > 0
    assert_same_stores(raw.path, fed.path)
    if dataset == "msd":
        assert FeatureStore.open(fed.path).read_masks(slice(None)).any()  # masks came through the pixel store


def test_two_backbones_from_one_pixel_store_read_each_raw_file_once(demo_data, tmp_path, monkeypatch):
    import nibabel

    reads: dict[str, int] = {}
    read_image_file, load = readers.read_image_file, nibabel.load

    def counting_image(path):
        reads[path] = reads.get(path, 0) + 1
        return read_image_file(path)

    def counting_load(path, *args, **kwargs):
        reads[str(path)] = reads.get(str(path), 0) + 1
        return load(path, *args, **kwargs)

    xray = build_index("csv", demo_data.xray_csv, modality="xray")
    ct = build_index("csv", demo_data.ct_csv, modality="ct")  # indexing reads the NIfTI headers: not counted
    readers.load_canonical_volume.cache_clear()
    monkeypatch.setattr(readers, "read_image_file", counting_image)
    monkeypatch.setattr(nibabel, "load", counting_load)
    one, two = tiny_backbone(), last_block_only()
    for index in (xray, ct):
        first, second = run(index, tmp_path, one), run(index, tmp_path, two)
        assert first.pixel_store == second.pixel_store and first.key != second.key
        assert first.rows_extracted == second.rows_extracted == len(index)
    sources = set(xray.table["source"]) | set(ct.table["source"])
    assert set(reads) == sources and set(reads.values()) == {1}, "every raw file read exactly once"


def test_an_undecodable_file_is_failed_in_every_feature_store_without_being_read_again(demo_data, tmp_path,
                                                                                       monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "images").symlink_to(demo_data.xray_csv.parent / "images")
    bad = data / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (data / "broken.csv").write_text(demo_data.xray_csv.read_text() + "corrupt.png,PX,train,1,0,0\n")
    index = build_index("csv", data / "broken.csv", modality="xray")
    built = build_pixel_store(index, PreprocessConfig.for_modality("xray", TINY_SIZE), tmp_path / "cache", workers=0,
                              progress=False)
    assert built.n_failed == 1 and str(bad) in built.failures["error"].iloc[0]

    def never(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(readers, "read_image_file", never)
    for backbone in (tiny_backbone(), last_block_only()):
        result = run(index, tmp_path / "cache", backbone)
        assert result.n_failed == 1 and result.failures["source"].iloc[0] == str(bad)
        assert result.failures["error"].iloc[0] == built.failures["error"].iloc[0]
        assert FeatureStore.open(result.path).valid.sum() == len(index) - 1


def test_the_dataset_api_gives_images_labels_and_masks_of_valid_rows(tmp_path):
    index = build_index("msd", make_msd(tmp_path / "data"))
    built = build_pixel_store(index, PreprocessConfig.for_modality(index.modality, 32), tmp_path / "cache",
                              workers=0, progress=False)
    store = PixelStore.open_key(tmp_path / "cache", index.dataset, PreprocessConfig.for_modality(index.modality, 32)
                                .to_dict())
    assert store.path == built.path
    dataset = PixelDataset(store)
    assert len(dataset) == len(index)
    item = dataset[3]
    assert item["image"].shape == (32, 32) and item["image"].dtype == torch.uint8 and not item["failed"]
    assert item["mask"].shape == (32, 32)
    np.testing.assert_array_equal(item["image"].numpy(), store.read_images(np.array([3]))[0])
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    x = device_batch(batch["image"], torch.device("cpu"), size=TINY_SIZE)
    assert x.shape == (4, 3, TINY_SIZE, TINY_SIZE) and x.dtype == torch.float32
    expected = torch.nn.functional.interpolate(batch["image"].float().unsqueeze(1), size=(TINY_SIZE, TINY_SIZE),
                                               mode="bilinear", antialias=True)
    torch.testing.assert_close(x[:, 1:2], expected)


def test_device_batch_keeps_uint8_and_rescales_uint16_counts():
    images = torch.tensor([[[0, 255], [128, 7]]], dtype=torch.uint8)
    same = device_batch(images, torch.device("cpu"))
    assert same.dtype == torch.uint8 and same.shape == (1, 3, 2, 2) and torch.equal(same[0, 2], images[0])
    counts = np.array([[[0, 65535], [32768, 257]]], dtype=np.uint16)
    wide = device_batch(torch.from_numpy(counts.view(np.int16)), torch.device("cpu"), bits=16)
    torch.testing.assert_close(wide[0, 0], torch.tensor([[0.0, 255.0], [32768 * 255 / 65535, 1.0]]))

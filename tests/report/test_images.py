"""Figures 2 and 6 read from a real feature store (tiny random ViT with patch tokens) and real mask files."""

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from featx.report.figures import Drawn, Missing
from featx.report.images import mask_figure, pca_figure, pca_rgb, pick_rows
from tests.conftest import tiny_backbone
from tests.report.test_figures import assert_image

SIZE = 56  # 4 x 4 patches of 14 px


@pytest.fixture(scope="module")
def patch_store(tmp_path_factory):
    from featx.datasets import build_index
    from featx.datasets.preprocess import PreprocessConfig
    from featx.demo.data import make_demo_data
    from featx.pipeline.extract import extract

    root = tmp_path_factory.mktemp("report-store")
    data = make_demo_data(root / "data", n_patients=12, n_volumes=4)
    index = build_index("csv", data.xray_csv, name="demo_xray", modality="xray")
    extracted = extract(index, tiny_backbone(SIZE, patch_tokens=True), PreprocessConfig.for_modality("xray", SIZE),
                        root / "cache", num_workers=0, progress=False)
    return extracted.path


def test_pca_separates_planted_foreground_from_background():
    rng = np.random.default_rng(0)
    tokens = rng.normal(0, 0.05, (3, 6, 6, 16))
    foreground = np.zeros((3, 6, 6), dtype=bool)
    foreground[:, 2:5, 1:4] = True
    tokens[foreground] += 3.0 * np.eye(16)[0] + rng.normal(0, 1.0, (foreground.sum(), 1)) * np.eye(16)[1]
    rgb = pca_rgb(tokens)
    assert rgb.shape == (3, 6, 6, 3) and rgb.min() >= 0 and rgb.max() <= 1
    lit = rgb.sum(axis=-1) > 0
    assert (lit == foreground).mean() > 0.95
    assert rgb[foreground].std(axis=0).max() > 0.1  # the foreground is coloured, not one flat colour


def test_pca_figure_reads_patch_tokens_and_images_from_the_store(tmp_path, patch_store):
    figure = pca_figure([patch_store], tmp_path, samples=3)
    image = assert_image(figure)
    assert figure.size_px == (600, 320) and image.shape[:2] == (320, 600)  # row labels + 3 samples x (image, PCA)


def test_pca_figure_says_what_is_missing(tmp_path, patch_store):
    assert "--patch-tokens" in pca_figure([], tmp_path).reason


def write_masks(folder: Path, names: list[str], value: int, shape=(SIZE, SIZE)) -> None:
    folder.mkdir(parents=True)
    mask = np.zeros(shape, dtype=np.uint8)
    mask[10:30, 12:40] = value
    for name in names:
        # as --save-masks names them: the sample id without its suffix, unsafe characters as "_"
        Image.fromarray(mask).save(folder / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', Path(name).with_suffix('').as_posix())}.png")


def test_mask_figure_overlays_each_decoders_masks(tmp_path, patch_store):
    from featx.cache import FeatureStore

    store = FeatureStore.open(patch_store)
    ids = store.index["sample_id"].to_numpy()[pick_rows(store, 2)].tolist()
    write_masks(tmp_path / "masks" / "demo_xray" / "seg_linear", ids, 1)  # DIR/<dataset>/<setting>/ as --save-masks
    write_masks(tmp_path / "masks" / "demo_xray" / "seg_unet", ids[:1], 2)
    # a NIfTI mask is read the same way (2D here; volumes are sliced like the store's rows)
    nib.save(nib.Nifti1Image(np.full((SIZE, SIZE), 2, dtype=np.uint8), np.eye(4)),
             tmp_path / "masks" / "demo_xray" / "seg_unet" / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', Path(ids[1]).with_suffix('').as_posix())}.nii.gz")
    write_masks(tmp_path / "masks" / "other_dataset" / "seg_unet", ["x.png"], 1)  # another dataset: not drawn here
    figure = mask_figure([patch_store], [tmp_path / "masks"], tmp_path / "out", samples=2)
    # one unreadable mask file is said in its panel; the figure is still drawn
    linear = tmp_path / "masks" / "demo_xray" / "seg_linear"
    broken = sorted(linear.iterdir())[0]
    broken.write_bytes(b"not a png")
    with_broken = mask_figure([patch_store], [tmp_path / "masks"], tmp_path / "out-broken", samples=2)
    assert isinstance(with_broken, Drawn) and "mask not readable" in with_broken.svg.read_text()
    assert isinstance(figure, Drawn)
    image = assert_image(figure)
    assert figure.size_px == (400, 420)  # 2 decoders x 2 samples at 2.0 x 2.1 in (no ground truth in this store)
    colours = image.reshape(-1, 3).astype(int)
    assert ((colours[:, 0] - colours[:, 2]).__abs__() > 60).mean() > 0.01  # coloured overlays, not only grey


def test_mask_figure_says_what_is_missing(tmp_path, patch_store):
    assert "--save-masks" in mask_figure([patch_store], [], tmp_path).reason
    assert "--store" in mask_figure([], [tmp_path], tmp_path).reason
    (tmp_path / "empty" / "linear").mkdir(parents=True)
    write_masks(tmp_path / "other" / "unet", ["nothing_like_a_sample.png"], 1)
    missing = mask_figure([patch_store], [tmp_path / "other"], tmp_path / "out")
    assert isinstance(missing, Missing) and "matched to sample ids by name" in missing.reason
    with pytest.raises(FileNotFoundError, match="no such mask folder"):
        mask_figure([patch_store], [tmp_path / "nowhere"], tmp_path / "out")

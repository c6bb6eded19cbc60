"""The compact int8 patch-token format and the choice of blocks that carry patch tokens."""

import numpy as np

from featx.cache import FeatureStore
from featx.cache.store import decode_int8, encode_int8


def test_int8_codes_are_within_half_a_step_of_each_token():
    rng = np.random.default_rng(0)
    tokens = (rng.normal(size=(3, 4, 4, 64)) * rng.uniform(0.1, 10, size=(3, 4, 4, 1))).astype(np.float16)
    codes, scale = encode_int8(tokens)
    assert codes.dtype == np.int8 and scale.dtype == np.float16 and scale.shape == (3, 4, 4)
    error = np.abs(decode_int8(codes, scale) - tokens.astype(np.float32))
    assert (error <= 0.5 * scale.astype(np.float32)[..., None] + 1e-6).all()
    again, scale2 = encode_int8(decode_int8(codes, scale, np.float16))
    assert np.array_equal(again, codes)  # reusing a row (decode, then encode) keeps it


def test_extract_int8_for_the_last_block_only_is_close_to_float16_under_another_key(tmp_path):
    from featx.datasets import build_index
    from featx.datasets.preprocess import PreprocessConfig
    from featx.demo.data import make_shapes_task
    from featx.pipeline.extract import extract
    from tests.conftest import tiny_backbone

    index = build_index("msd", make_shapes_task(tmp_path / "d", n_volumes=4, size=28, n_slices=2), val_fraction=0.25, test_fraction=0.25)
    backbone = tiny_backbone(patch_tokens=True)
    preprocess = PreprocessConfig.for_modality(index.modality, backbone.img_size)
    kw = {"num_workers": 0, "progress": False}
    full = FeatureStore.open(extract(index, backbone, preprocess, tmp_path / "c", **kw).path)
    compact = FeatureStore.open(extract(index, backbone, preprocess, tmp_path / "c", patch_format="int8", patch_blocks=1, **kw).path)
    assert compact.key != full.key and compact.attrs["key_inputs"]["backbone"]["patch_format"] == "int8"
    first, last = full.layers
    assert f"features/{first}/patch" not in compact.group and f"features/{last}/patch" in compact.group
    assert compact.group[f"features/{last}/patch"].dtype == np.int8 and compact.attrs["patch_format"] == "int8"
    rows = np.arange(full.n_rows)
    exact, approx = full.read_patch(last, rows), compact.read_patch(last, rows)
    assert approx.dtype == np.float32 and np.abs(approx - exact).max() <= np.abs(exact).max() / 127
    assert compact.read_patch(last, rows, dtype=None).dtype == np.float16
    assert np.array_equal(compact.read_masks(rows), full.read_masks(rows))

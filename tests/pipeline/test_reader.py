import numpy as np
import pandas as pd
from PIL import Image

from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.reader import BlockBatchSampler, SampleDataset


def test_batches_never_cross_blocks_and_cover_the_requested_blocks():
    sampler = BlockBatchSampler([0, 2], block_rows=5, n_rows=12, batch_size=2)
    batches = list(sampler)
    assert batches == [[0, 1], [2, 3], [4], [10, 11]]
    assert len(sampler) == len(batches)


def test_an_unreadable_file_becomes_a_flagged_row_naming_the_file(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    table = pd.DataFrame({"source": [str(good), str(bad), str(tmp_path / "gone.png")], "reader": ["image"] * 3,
                          "mask_source": ["", "", ""], "mask_reader": ["", "", ""]})
    dataset = SampleDataset(table, PreprocessConfig(size=16), with_masks=False)
    first, second, third = dataset[0], dataset[1], dataset[2]
    assert first["error"] == "" and first["pixels"].shape == (3, 16, 16)
    assert str(bad) in second["error"] and "cannot decode" in second["error"]
    assert str(tmp_path / "gone.png") in third["error"] and "not found" in third["error"]
    assert not second["pixels"].any()


def test_an_incremental_rebuild_computes_rows_in_the_batches_a_fresh_run_uses():
    fresh = BlockBatchSampler([0, 1, 2], block_rows=8, n_rows=20, batch_size=3)
    copied = np.ones(20, dtype=bool)
    copied[[4, 9, 19]] = False  # three new or changed rows; the rest come from the previous store
    rebuild = BlockBatchSampler([0, 1, 2], block_rows=8, n_rows=20, batch_size=3, skip=copied)
    assert all(batch in fresh.batches for batch in rebuild.batches)  # the same batches, never re-cut
    assert rebuild.batches == [[3, 4, 5], [8, 9, 10], [19]]

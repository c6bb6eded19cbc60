import numpy as np
import pytest

from featx.pipeline.writer import Batch, BlockWriter
from tests.cache.test_store import create, make_index


def feats(rows, value):
    values = np.full((len(rows), 3), value, np.float16)
    return {"block_0": {"cls": values, "pooled": values}, "block_1": {"cls": values, "pooled": values}}


def test_blocks_are_written_only_when_complete(tmp_path):
    store = create(tmp_path, make_index(10), block_rows=4)
    writer = BlockWriter(store)
    writer.put(Batch(np.array([0, 1]), feats([0, 1], 1), ["", ""]))
    writer.put(Batch(np.array([8, 9]), feats([8, 9], 3), ["", "broken"]))
    writer.put(Batch(np.array([2, 3]), feats([2, 3], 2), ["", ""]))
    writer.close()
    assert store.pending_blocks() == [1]
    assert store.read("cls", "block_0", slice(0, 4))[:, 0].tolist() == [1, 1, 2, 2]
    assert store.failures()["row"].tolist() == [9]


def test_a_writer_failure_surfaces_in_the_producer(tmp_path):
    store = create(tmp_path, make_index(4), block_rows=4)
    writer = BlockWriter(store)
    bad = {"block_0": {"cls": np.full((4, 3), np.inf, np.float16)}}
    writer.put(Batch(np.arange(4), bad, [""] * 4))
    with pytest.raises(RuntimeError, match="non-finite"):
        writer.close()

"""Checks on the store a decoder reads, the sealed masks and the prefetching reader."""

import numpy as np
import pytest

from featx.cache import FeatureStore
from featx.evaluation.features import ProbeError
from featx.evaluation.selection import SealedSplitError
from featx.probes.segmentation.data import MemoryBatches, StoreBatches, batch_order, open_segmentation


def test_store_rows_split_and_layers(shapes_3d):
    data = open_segmentation(shapes_3d)
    assert data.is_3d and data.level == "volume" and data.class_names == ["background", "shape"]
    assert len(data.layers) == 5 and data.grid == (4, 4) and data.mask_size == 56
    assert data.decoder_layers("seg_linear") == data.layers[-1:]
    assert data.decoder_layers("seg_unet") == data.layers


def test_classification_store_is_refused(store_factory):
    store = FeatureStore.open(store_factory())
    with pytest.raises(ProbeError, match="segmentation dataset"):
        open_segmentation(store)


def test_too_few_blocks_say_which_flags(tmp_path):
    from featx.datasets import build_index
    from featx.demo.data import make_shapes_task
    from tests.probes.segmentation.conftest import extract_seg

    index = build_index("msd", make_shapes_task(tmp_path / "d", n_volumes=4, size=16, n_slices=2), val_fraction=0.25, test_fraction=0.25)
    data = open_segmentation(extract_seg(index, tmp_path / "c", n_last=2))
    with pytest.raises(ProbeError, match=r"needs the last 5: re-extract with --patch-tokens --n-last 5"):
        data.decoder_layers("seg_unet")


def test_store_batches_equal_memory_batches_and_masks_stay_sealed(shapes_3d):
    data = open_segmentation(shapes_3d)
    layers = data.decoder_layers("seg_unet")
    train = data.positions("train")
    order = batch_order(train, 7, seed=3)
    streamed = list(StoreBatches(data, layers, depth=2).batches(order))
    memory = list(MemoryBatches(data, layers, data.positions("train+val")).batches(order))
    assert len(streamed) == len(memory) == len(order)
    for (t1, m1, p1), (t2, m2, p2) in zip(streamed, memory):
        assert np.array_equal(p1, p2) and np.array_equal(m1, m2)
        assert all(np.array_equal(a, b) for a, b in zip(t1, t2))
    test = data.positions("test")
    with pytest.raises(SealedSplitError):
        list(StoreBatches(data, layers).batches([test]))
    tokens_only = list(StoreBatches(data, layers).batches([test], with_masks=False))
    assert tokens_only[0][1] is None and tokens_only[0][0][0].shape == (len(test), 4, 4, 32)


def test_mask_ids_outside_the_labels_name_the_sample(shapes_3d, tmp_path):
    import shutil

    copy = tmp_path / shapes_3d.path.name
    shutil.copytree(shapes_3d.path, copy)
    store = FeatureStore.open(copy, writable=True)
    masks = store.group["masks"]
    first = masks[0]
    first[0, 0] = 7
    masks[0] = first
    data = open_segmentation(FeatureStore.open(copy))
    position = int(np.flatnonzero(data.rows == 0)[0])
    with pytest.raises(ProbeError, match=rf"{data.sample_ids[position]}.*class id 7.*2 classes"):
        data.read_masks(np.array([position]), sealed_ok=True)

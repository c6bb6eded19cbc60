"""The light 3D decoder on cached 3D feature maps beats the mean-mask baseline, scored as the 2D decoders."""

import numpy as np
import pytest

from featx.evaluation.ledger import TestReuseWarning
from featx.pipeline.volume_extract import extract_volumes
from featx.probes.volume_seg import BASELINE, SETTING, run_volume_segmentation
from tests.pipeline.test_volume_extract import SEGRES
from tests.volume_data import planted_volumes, tiny_prep


def test_decoder_from_cached_maps_beats_the_mean_mask_clearly(tmp_path):
    index = planted_volumes(tmp_path / "raw", 15, always=True, seed=3)
    prep = tiny_prep(tile=16, shape=(16, 16, 16), spacing=(4.0, 4.0, 4.0))
    store = extract_volumes(index, SEGRES, prep, tmp_path / "cache", feature_maps=True).store
    assert store.read_masks(np.arange(15)).shape == (15, 16, 16, 16) and store.read_masks([0]).sum() > 0
    outcome = run_volume_segmentation(store, epochs=40, n_boot=50)
    assert outcome.test.unit == "volume" and outcome.test.n_units == 3
    assert outcome.test.headline > outcome.baseline.headline + 0.2, (outcome.test.values, outcome.baseline.values)
    by = {(r["setting"], r["metric"], r["aggregation"]) for r in outcome.records if "class" not in r}
    for setting in (SETTING, BASELINE):
        assert {(setting, "dice_jaccard_mean", "per_volume"), (setting, "dice_all_voxels", "all_voxels")} <= by
    record = next(r for r in outcome.records if r["setting"] == SETTING and r["metric"] == "dice_jaccard_mean")
    assert record["level"] == "volume" and record["store_key"] == store.key and record["split"] == "test"
    assert record["ci_low"] <= record["value"] <= record["ci_high"] and record["hyperparameters"]["lr"] in (3e-2, 1e-1)
    assert record["test_reuse"] == 0
    # the sealed test, ledgered: other hyper-parameters on the same test split warn and are marked
    with pytest.warns(TestReuseWarning, match="TEST SPLIT RE-USED"):
        again = run_volume_segmentation(store, lrs=(3e-2,), epochs=2, n_boot=0)
    assert next(r for r in again.records if r["setting"] == SETTING)["test_reuse"] == 1

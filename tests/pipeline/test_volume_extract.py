"""Volume rows: one store row per volume, keyed by spacing and window, read by the existing probes."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from featx.backbones.request import BackboneRequest
from featx.datasets.index import DatasetError
from featx.datasets.volumes import prepare_volume, tile_grid
from featx.evaluation.features import load_probe_data
from featx.evaluation.metrics import score
from featx.pipeline.volume_extract import extract_volumes
from featx.probes.knn import l2_normalise, search, weighted_vote
from featx.probes.linear import LogisticProbe
from tests.volume_data import TINY_SEGRES, planted_volumes, tiny_prep

SEGRES = BackboneRequest("segresnet3d", 32, random_init=True, n_last=2, model_overrides=tuple(
    (k, tuple(v) if isinstance(v, list) else v) for k, v in TINY_SEGRES.items()))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("vol")
    index = planted_volumes(root / "raw", 20)
    prep = tiny_prep(shape=(32, 32, 32))
    return index, prep, root / "cache", extract_volumes(index, SEGRES, prep, root / "cache")


def test_one_row_per_volume_keyed_by_spacing_and_window(planted):
    index, prep, cache, run = planted
    store = run.store
    assert store.n_rows == 20 and store.valid.all() and run.n_volumes == 20
    assert store.preprocessing["windows"] == [[-100.0, 300.0]] and store.preprocessing["spacing"] == [2.0, 2.0, 2.0]
    assert store.attrs["level"] == "volume" and store.read("pooled", "stage_2").shape == (20, 16)
    again = extract_volumes(index, SEGRES, prep, cache)
    assert again.n_volumes == 0 and again.store.key == store.key  # the same preprocessing: reused
    other_window = extract_volumes(index.__class__(**{**index.__dict__, "table": index.table.iloc[:5].copy(),
                                                      "labels": index.labels[:5]}),
                                   SEGRES, replace(prep, windows=((-1000.0, 1000.0),)), cache)
    other_spacing = extract_volumes(index, SEGRES, replace(prep, spacing=(3.0, 3.0, 3.0)), cache)
    keys = {store.key, other_window.store.key, other_spacing.store.key}
    assert len(keys) == 3 and other_spacing.n_volumes == 20
    assert not np.allclose(other_spacing.store.read("pooled", "stage_2"), store.read("pooled", "stage_2"))


def test_knn_and_linear_probes_read_volume_rows(planted):
    _, _, _, run = planted
    data = load_probe_data(run.store, n_last_blocks=2)
    assert data.level == "volume" and data.n == 20 and list(data.ids[:3]) == ["v0", "v1", "v2"]
    train, held = data.rows("train"), data.rows("val+test")
    X = data.features(n_last_blocks=2)
    linear = LogisticProbe("binary").fit(X[train], data.labels[train]).predict(X[held])
    scored = score(data.labels[held], linear, data.patients[held], task="binary", label_names=data.label_names,
                   n_boot=0)
    assert scored.auroc_macro >= 0.9
    database = l2_normalise(X[train])
    found = search(l2_normalise(X[held]), database, k=3, backend="torch")
    votes = weighted_vote(found, data.labels[train], k=3)
    assert (votes.argmax(1) == data.labels[held].argmax(1)).mean() >= 0.75


def test_a_volume_larger_than_the_input_is_tiled_and_merged(tmp_path):
    index = planted_volumes(tmp_path / "raw", 1)
    prep = tiny_prep(shape=(48, 48, 48), overlap=0.5)
    store = extract_volumes(index, SEGRES, prep, tmp_path / "cache", feature_maps=True).store
    assert store.patch_grid == {"stage_1": (24, 24, 24), "stage_2": (12, 12, 12)}
    merged = store.read_patch("stage_2", np.array([0]))[0]
    assert np.allclose(store.read("pooled", "stage_2")[0], merged.mean(axis=(0, 1, 2)), atol=1e-2)
    assert tile_grid(prep.shape, 32, 0.5, 4)[:2] == [(0, 0, 0), (0, 0, 16)]
    # voxels only the first tile covers hold exactly that tile's features
    image, _ = prepare_volume(index.table["source"][0], prep)
    model = SEGRES.load().model if SEGRES.patch_tokens else replace(SEGRES, patch_tokens=True).load().model
    first = model(torch.from_numpy(image[None, :, :32, :32, :32]))["stage_2"]["patch"][0].numpy()
    assert np.allclose(merged[:4, :4, :4], first[:4, :4, :4], atol=2e-2)


def test_slice_rows_are_refused(planted):
    index = planted[0]
    table = index.table.copy()
    table.loc[0, "slice_index"] = 3
    with pytest.raises(DatasetError, match="one row per volume"):
        extract_volumes(index.__class__(**{**index.__dict__, "table": table}), SEGRES, planted[1], planted[2])


def test_a_second_3d_backbone_reads_the_volume_pixel_store_not_the_files(tmp_path, monkeypatch):
    from featx.cache import volume_pixels
    from tests.volume_data import TINY_SWIN

    index = planted_volumes(tmp_path / "raw", 3)
    (tmp_path / "raw" / "vol2.nii.gz").write_bytes(b"not a volume")  # an unreadable file: a failed row
    index = index.__class__(**{**index.__dict__, "table": index.table.copy()})
    prep = tiny_prep(shape=(32, 32, 32))
    first = extract_volumes(index, SEGRES, prep, tmp_path / "cache").store
    assert first.valid.tolist() == [True, True, False] and "vol2.nii.gz" in first.failures()["error"][0]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded and resampled again")

    monkeypatch.setattr(volume_pixels, "prepare_volume", no_decoding)
    swin = BackboneRequest("swinunetr3d", 32, random_init=True, n_last=1, model_overrides=tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in TINY_SWIN.items()))
    second = extract_volumes(index, swin, replace(prep, overlap=0.0), tmp_path / "cache").store
    assert second.backbone_name == "swinunetr3d" and second.valid.tolist() == [True, True, False]
    with pytest.raises(AssertionError, match="decoded and resampled again"):  # another window: other pixels
        extract_volumes(index, swin, replace(prep, windows=((-50.0, 50.0),)), tmp_path / "cache")

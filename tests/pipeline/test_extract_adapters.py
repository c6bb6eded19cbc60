"""`featx extract` + `featx probe` on native-layout benchmark fixtures (2D, 3D, segmentation)."""

import json
import re

import numpy as np
from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cli import app
from tests.conftest import TINY_SIZE, tiny_extract_args
from tests.datasets.fixtures import make_figshare, make_msd, make_sarscov2

runner = CliRunner()


def extract(dataset, root, cache, *extra):
    result = runner.invoke(app, tiny_extract_args(dataset, root, cache, "--workers", "0", *extra))
    assert result.exit_code == 0, result.output
    return FeatureStore.open(re.search(r"store: (\S+)", result.output).group(1))


def probe(cache, dataset, out):
    result = runner.invoke(app, ["probe", "--cache", str(cache), "--dataset", dataset, "--backbone", "dinov2_vits14",
                                 "--setting", "knn", "--setting", "linear", "--k", "3", "--out", str(out)])
    assert result.exit_code in (0, 3), result.output  # 3: some numbers skipped (a tiny fixture), the rest written
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_2d_figshare_mat_files_extract_and_probe(tmp_path):
    store = extract("figshare_brain_tumor", make_figshare(tmp_path / "data"), tmp_path / "cache")
    assert store.task == "multiclass" and store.valid.all() and store.attrs["modality"] == "mri"
    assert store.attrs["preprocessing"]["intensity"] == "percentile"
    records = probe(tmp_path / "cache", "figshare_brain_tumor", tmp_path / "r.jsonl")
    test = [r for r in records if r["split"] == "test" and r["metric"] == "auroc_macro"]
    assert {r["setting"] for r in test} == {"knn", "linear"}
    assert all(r["store_key"] == store.key and r["random_init"] for r in test)


def test_3d_sarscov2_volumes_extract_per_slice_and_probe_per_volume(tmp_path):
    store = extract("sarscov2_ct", make_sarscov2(tmp_path / "data"), tmp_path / "cache")
    table = store.index
    assert (table["volume_id"] != "").all()
    assert table.groupby("volume_id")["slice_index"].apply(lambda s: list(s) == list(range(len(s)))).all()
    records = probe(tmp_path / "cache", "sarscov2_ct", tmp_path / "r.jsonl")
    test = [r for r in records if r["split"] == "test" and r["metric"] == "auroc_macro"]
    assert test and all(r["level"] == "volume" for r in test)
    n_test_volumes = table.loc[table["split"] == "test", "volume_id"].nunique()
    assert all(r["n_test"] == n_test_volumes for r in test)


def test_segmentation_slices_keep_their_masks_and_patch_tokens(tmp_path):
    store = extract("msd", make_msd(tmp_path / "data"), tmp_path / "cache", "--patch-tokens")
    assert store.task == "segmentation" and store.labels.shape[1] == 0
    masks = store.read_masks(slice(0, store.n_rows))
    assert masks.shape == (store.n_rows, TINY_SIZE, TINY_SIZE) and masks.max() >= 1
    patch = store.read_patch(store.layers[-1], np.arange(store.n_rows))
    assert patch.shape == (store.n_rows, 2, 2, 32) and np.isfinite(patch).all()
    # each stored mask is its own slice's mask, in canonical orientation, resized to the input size
    from featx.datasets import load_sample
    from featx.datasets.preprocess import resize_mask

    row = store.index.iloc[store.n_rows // 2].to_dict()
    _, mask = load_sample(row)
    np.testing.assert_array_equal(masks[store.n_rows // 2], resize_mask(mask, TINY_SIZE))

import json

import numpy as np
from typer.testing import CliRunner

from featx.cli import app
from tests.cache.test_store import block_features, create, make_index

runner = CliRunner()


def test_cache_ls_shows_published_and_partial_stores_and_info_shows_provenance(tmp_path):
    published = create(tmp_path, make_index(8, task="multilabel"), block_rows=4)
    for block in range(2):
        published.write_block(block, block_features(published, block, 1), np.array([False, True, False, False]),
                              ["", "x.png: cannot decode", "", ""])
    path = published.publish()
    partial = create(tmp_path / "other", make_index(8), block_rows=4)
    partial.write_block(0, block_features(partial, 0, 1), np.zeros(4, bool), [""] * 4)

    listing = runner.invoke(app, ["cache", "ls", str(tmp_path)])
    assert listing.exit_code == 0, listing.output
    line = next(line for line in listing.output.splitlines() if "published" in line)
    assert line.split()[:8] == ["toy", "toy", published.key, "published", "8", "8", "2", "None"]
    nested = runner.invoke(app, ["cache", "ls", str(tmp_path / "other")])
    assert "partial" in nested.output and " 4 " in nested.output

    info = runner.invoke(app, ["cache", "info", str(path)])
    assert info.exit_code == 0 and json.loads(info.output)["key"] == published.key


def test_cache_ls_on_an_empty_folder_says_so(tmp_path):
    result = runner.invoke(app, ["cache", "ls", str(tmp_path)])
    assert result.exit_code == 0 and "no feature stores" in result.output


def test_cache_gc_keeps_recent_versions_and_rm_removes_a_store_unless_it_is_read(tmp_path):
    from featx.cache import FeatureStore
    from featx.cache.versions import Versions
    from tests.cache.test_versions import publish

    pointer = [publish(tmp_path, value) for value in (1, 2, 3)][-1]
    gc = runner.invoke(app, ["cache", "gc", str(tmp_path), "--keep", "2"])
    assert gc.exit_code == 0 and "removed versions [1]" in gc.output
    assert Versions.of(pointer).numbers() == [2, 3]

    reader = FeatureStore.open(pointer)  # holds version 3
    refused = runner.invoke(app, ["cache", "rm", str(pointer)])
    assert refused.exit_code != 0 and "being read" in refused.output
    del reader
    removed = runner.invoke(app, ["cache", "rm", str(pointer)])
    assert removed.exit_code == 0, removed.output
    assert not list((tmp_path / "toy" / "toy").iterdir())


def test_cache_ls_shows_each_stores_intensity_rule(tmp_path):
    from featx.cache import FeatureStore, cache_key, store_dir

    rules = {"window[-1024,600]": {"intensity": "window", "window": [-1024.0, 600.0], "resample": "bilinear"},
             "percentile[5,95]": {"intensity": "percentile", "percentiles": [5.0, 95.0], "resample": "bilinear"},
             "minmax": {"intensity": "minmax", "resample": "bilinear"}}
    for preprocessing in rules.values():
        index = make_index(4)
        key, inputs = cache_key(dataset="toy", backbone={"name": "toy"}, weights_hash="random-init",
                                preprocessing=preprocessing)
        path = store_dir(tmp_path, "toy", "toy") / f"{key}.zarr.partial"
        path.parent.mkdir(parents=True, exist_ok=True)
        store = FeatureStore.create(path, key=key, key_inputs=inputs, index=index, feature_dims={"block_0": 3},
                                    block_rows=4, provenance={"preprocessing": preprocessing})
        store.write_block(0, {"block_0": block_features(store, 0, 1)["block_0"]}, np.zeros(4, bool), [""] * 4)
        store.publish()
    listing = runner.invoke(app, ["cache", "ls", str(tmp_path)])
    assert listing.exit_code == 0 and listing.output.split("\n")[0].split()[-2:] == ["intensity", "size_mib"]
    shown = {line.split()[-2] for line in listing.output.splitlines()[1:]}
    assert shown == set(rules)

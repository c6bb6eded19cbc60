"""`featx probe --cache`: one store per pick, named on every line and in every record."""

import json

from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cli import app
from tests.cache.test_select import variant

runner = CliRunner()


def test_an_ambiguous_cache_pick_is_refused_and_size_picks_the_store(tmp_path):
    root = tmp_path / "cache"
    small = variant(root, 1, img_size=56, random_init=True)
    large = variant(root, 2, img_size=112, random_init=True)
    out = tmp_path / "r.jsonl"
    args = ["probe", "--cache", str(root), "--dataset", "planted", "--backbone", "tiny_vit", "--setting", "knn",
            "--k", "5", "--bootstrap", "20", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "2 stores fit" in refused.output
    assert FeatureStore.open(small).key in refused.output and FeatureStore.open(large).key in refused.output
    assert not out.exists()  # nothing ran

    picked = runner.invoke(app, [*args, "--size", "112"])
    assert picked.exit_code == 0, picked.output
    key = FeatureStore.open(large).key
    lines = [line for line in picked.output.splitlines() if line.startswith("planted x tiny_vit")]
    assert lines and all(f"[key {key}, size 112, weights random-init]" in line for line in lines)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["store_key"] == key and r["store"]["img_size"] == 112 for r in records)
    assert all(r["store"]["weights"] == "random-init" and r["store"]["patch_tokens"] is False for r in records)


def test_cache_ls_shows_size_weights_layers_patch_tokens_and_preprocessing(tmp_path):
    root = tmp_path / "cache"
    variant(root, 1, img_size=56, random_init=True)
    variant(root, 2, img_size=112, random_init=False, patch=True, weights_hash="cafe1234" * 8)
    listing = runner.invoke(app, ["cache", "ls", str(root)])
    assert listing.exit_code == 0, listing.output
    header, *rows = listing.output.splitlines()
    for column in ("img_size", "weights", "layers", "patch_tokens", "intensity"):
        assert column in header
    assert any(" 56 " in row and "random-init" in row and "False" in row for row in rows)
    assert any(" 112 " in row and "sha256:cafe1234" in row and "True" in row and "window[-1024,600]" in row for row in rows)

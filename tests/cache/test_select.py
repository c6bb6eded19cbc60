"""Picking one store of a (dataset, backbone) pair by its key fields, and refusing to guess."""

import pytest

from featx.cache import FeatureStore, StoreError
from featx.cache.manifest import MANIFEST, build_manifest
from featx.cache.select import AmbiguousStore, StoreFacts, StorePick, select_store
from featx.cache.store import create_array
from tests.probes.conftest import make_store


def variant(root, seed, *, img_size, random_init, patch=False, weights_hash="deadbeef"):
    """A real published store whose provenance says size / weights / patch tokens as given."""
    path = make_store(root, seed=seed, n_patients=20, random_init=random_init)
    store = FeatureStore.open(path, writable=True)
    attrs = store.attrs
    attrs["backbone"] = {**attrs["backbone"], "img_size": img_size, "random_init": random_init, "weights_hash": weights_hash}
    attrs["patch_grid"] = {layer: [4, 4] for layer in attrs["layers"]} if patch else None
    for layer in attrs["layers"] if patch else []:  # laid out as the grid says (empty)
        n, dim = store.n_rows, store.feature_dims[layer]
        create_array(store.group, f"features/{layer}/patch", shape=(n, 4, 4, dim), chunks=(1, 4, 4, dim),
                     shards=(store.block_rows, 4, 4, dim), dtype="float16")
    attrs["preprocessing"] = {"intensity": "window", "window": [-1024.0, 600.0], "resample": "bilinear"}
    store.group.attrs["featx"] = attrs
    store.group.attrs[MANIFEST] = build_manifest(store.path)  # planted provenance, sealed as if published so
    return path


@pytest.fixture
def three(tmp_path):
    root = tmp_path / "cache"
    return root, {
        "s56": variant(root, 1, img_size=56, random_init=True),
        "s112": variant(root, 2, img_size=112, random_init=True),
        "s112_pre": variant(root, 3, img_size=112, random_init=False, patch=True, weights_hash="cafe1234" * 8),
    }


def test_an_ambiguous_pick_is_refused_listing_every_candidate(three):
    root, paths = three
    with pytest.raises(AmbiguousStore) as caught:
        select_store(root, "planted", "tiny_vit")
    message = str(caught.value)
    assert "3 stores fit" in message and "--size" in message
    for path in paths.values():
        assert FeatureStore.open(path).key in message
    with pytest.raises(AmbiguousStore, match="2 stores fit --size 112"):
        select_store(root, "planted", "tiny_vit", StorePick(size=112))


def test_key_fields_pick_exactly_one_store(three):
    root, paths = three
    assert select_store(root, "planted", "tiny_vit", StorePick(size=56)) == paths["s56"]
    assert select_store(root, "planted", "tiny_vit", StorePick(size=112, weights="random")) == paths["s112"]
    assert select_store(root, "planted", "tiny_vit", StorePick(weights="pretrained")) == paths["s112_pre"]
    assert select_store(root, "planted", "tiny_vit", StorePick(weights="cafe")) == paths["s112_pre"]
    assert select_store(root, "planted", "tiny_vit", StorePick(size=112, patch_tokens=False)) == paths["s112"]
    key = FeatureStore.open(paths["s112"]).key
    assert select_store(root, "planted", "tiny_vit", StorePick(key=key[:3])) == paths["s112"]


def test_a_pick_nothing_fits_lists_what_is_there(three):
    root, _ = three
    with pytest.raises(StoreError, match="no store fits --size 448") as caught:
        select_store(root, "planted", "tiny_vit", StorePick(size=448))
    assert str(caught.value).count("size 112") == 2
    with pytest.raises(StoreError, match="run `featx extract` first"):
        select_store(root, "other", "tiny_vit")


def test_store_facts_name_size_weights_layers_patch_tokens_preprocessing(three):
    _, paths = three
    facts = StoreFacts.of(FeatureStore.open(paths["s112_pre"]).attrs)
    assert facts.brief() == f"key {facts.key}, size 112, weights sha256:cafe1234"
    assert "patch tokens yes" in facts.describe() and "window[-1024,600]" in facts.describe()
    assert StoreFacts.of(FeatureStore.open(paths["s56"]).attrs).weights == "random-init"

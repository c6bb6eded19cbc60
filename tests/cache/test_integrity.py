"""Stores whose metadata lies: provenance edits found by verify and refused when opened; shapes that disagree
with the row count refused in bounded memory, locally and over HTTP (issue 22, items 6 and 7)."""

import json
import tracemalloc

import pytest
import zarr
from typer.testing import CliRunner

from featx.cache import FeatureStore, StoreError
from featx.cache.manifest import MANIFEST, build_manifest
from featx.cache.verify import verify_store
from featx.cli import app
from tests.cache.test_remote import publish_toy_store

runner = CliRunner()


def edit_json(path, change):
    """Rewrite a zarr.json the way a user with a text editor would."""
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def edit_featx(store_path, **fields):
    def change(meta):
        for name, value in fields.items():
            target = meta["attributes"]["featx"]
            *parents, leaf = name.split(".")
            for parent in parents:
                target = target[parent]
            target[leaf] = value
    edit_json(store_path / "zarr.json", change)


def verify(target):
    return verify_store(FeatureStore.open(target, check=False))


def probe(target, tmp_path):
    return runner.invoke(app, ["probe", "--store", str(target), "--setting", "knn", "--k", "5", "--bootstrap", "0",
                               "--out", str(tmp_path / "results.jsonl")])


FORGED = "ab" * 32


@pytest.fixture
def store(tmp_path):
    """A published random-init store (60 rows, blocks of 16), its version folder."""
    return FeatureStore.open(publish_toy_store(tmp_path, n=60)).path


def test_a_clean_store_verifies_and_carries_a_manifest(store):
    report = verify(store)
    assert report.ok and not report.problems and not report.notes
    assert MANIFEST in zarr.open_group(str(store), mode="r").attrs


def test_forged_weights_and_random_init_are_found_by_verify_and_refused_by_the_probe(tmp_path, store):
    edit_featx(store, **{"backbone.weights_hash": FORGED, "backbone.random_init": False})
    problems = verify(store).problems
    assert problems[0].startswith("its featx attributes (provenance and key) changed since it was published")
    assert f"backbone.weights_hash {FORGED} differs from key_inputs' random-init" in problems
    assert "backbone.random_init is False but key_inputs' weights_hash is random-init" in problems
    with pytest.raises(StoreError, match="featx attributes .* changed since the store was published"):
        FeatureStore.open(store)
    refused = probe(store, tmp_path)
    assert refused.exit_code == 1 and "featx cache verify" in refused.output
    assert not (tmp_path / "results.jsonl").exists() or FORGED not in (tmp_path / "results.jsonl").read_text()
    cli = runner.invoke(app, ["cache", "verify", str(store)])
    assert cli.exit_code == 1 and "backbone.random_init is False" in cli.output


def test_a_forger_who_reseals_the_manifest_is_still_caught_by_the_key_inputs(store):
    edit_featx(store, **{"backbone.weights_hash": FORGED, "backbone.random_init": False})
    group = zarr.open_group(str(store), mode="r+")
    group.attrs[MANIFEST] = build_manifest(store)
    FeatureStore.open(store)  # the manifest holds: what it cannot know, verify recomputes
    assert "backbone.random_init is False but key_inputs' weights_hash is random-init" in verify(store).problems


def test_edited_key_inputs_and_key_are_found_by_recomputing_the_key(store):
    key = FeatureStore.open(store).key
    edit_featx(store, **{"key_inputs.preprocessing": {"intensity": "window", "window": [-1024, 600]}})
    assert any(p.startswith(f"key {key} is not the hash of its key_inputs") for p in verify(store).problems)
    with pytest.raises(StoreError, match="changed since the store was published"):
        FeatureStore.open(store)

    edit_featx(store, key="ffffffffffffffff")
    problems = verify(store).problems
    assert "key ffffffffffffffff differs from the key " + key + " its folder is named by" in problems
    assert any(p.startswith("key ffffffffffffffff is not the hash of its key_inputs") for p in problems)


def test_a_patient_in_two_splits_is_named_by_verify(store):
    zarr.open_group(str(store), mode="r+")["index/split"][0] = "test"  # p0's other row stays in train
    report = verify(store)
    leak = "patient 'p0' appears in splits ['test', 'train'] (1 patients in all): splits must be patient-level"
    assert report.problems == [leak]


def test_a_store_published_before_manifests_opens_with_a_note(store, caplog):
    group = zarr.open_group(str(store), mode="r+")
    del group.attrs[MANIFEST]
    FeatureStore.open(store)
    assert "published before featx wrote manifests" in caplog.text
    report = verify(store)
    note = "published before featx wrote manifests: edits to its metadata cannot be detected"
    assert report.ok and report.notes == [note]


def huge_written(store):
    edit_json(store / "written" / "zarr.json", lambda meta: meta.update(shape=[3_000_000_000]))


def huge_row_count(store):
    edit_featx(store, n_rows=3_000_000_000)


def shrunk_split(store):
    edit_json(store / "index" / "split" / "zarr.json", lambda meta: meta.update(shape=[52]))


@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize(("edit", "message"), [
    (huge_written, "written: declares 3,000,000,000 rows, the store has 60"),
    (shrunk_split, "index/split: declares 52 rows, the store has 60"),
    (huge_row_count, "n_rows: 3000000000 is not a row count between 1 and 100,000,000"),
])
def test_an_array_shape_that_disagrees_with_the_store_is_refused_in_bounded_memory(
        tmp_path, served, store, where, edit, message):
    edit(store)
    target = store if where == "local" else f"{served}/{store.relative_to(tmp_path).as_posix()}"
    tracemalloc.start()
    try:
        with pytest.raises(StoreError) as refused:
            FeatureStore.open(target)
        report = verify(target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(refused.value) == (f"{target}: {message}; its metadata is damaged or was edited: run "
                                  "`featx cache verify` on it, then `featx cache rm` it and re-extract")
    assert report.problems == [message] and report.chunks_read == 0
    assert peak < 64 * 2**20  # metadata only: nothing the size of the declared rows
    cli = probe(target, tmp_path)
    assert cli.exit_code == 1 and message in cli.output


def test_a_row_count_grown_consistently_is_refused_by_the_missing_last_block(store):
    grown = 80  # every array and the attributes say 80 rows; the chunks hold 60 (blocks 0-3)
    for meta in store.rglob("zarr.json"):
        if meta.parent != store and json.loads(meta.read_text())["node_type"] == "array":
            edit_json(meta, lambda m: m.update(shape=[grown, *m["shape"][1:]]))
    edit_featx(store, n_rows=grown)
    zarr.open_group(str(store), mode="r+").attrs[MANIFEST] = build_manifest(store)
    with pytest.raises(StoreError, match=r"written: the last block's chunk \(written/c/4\) is missing"):
        FeatureStore.open(store)


def test_an_extracted_store_verifies_clean_and_a_cache_copied_following_links_rebuilds(tmp_path):
    """Real extractions: provenance as recorded agrees with the key; a `cp -rL` copy is adopted by the next rebuild."""
    import subprocess

    from featx.datasets import build_index
    from featx.datasets.preprocess import PreprocessConfig
    from featx.demo.data import make_shapes_task
    from featx.pipeline.extract import extract
    from tests.conftest import tiny_backbone

    backbone = tiny_backbone()
    kw = {"num_workers": 0, "progress": False}

    def index(n_volumes):
        root = make_shapes_task(tmp_path / "d", n_volumes=n_volumes, size=28, n_slices=2)
        return build_index("msd", root, val_fraction=0.25, test_fraction=0.25)

    small = index(4)
    preprocess = PreprocessConfig.for_modality(small.modality, backbone.img_size)
    pointer = extract(small, backbone, preprocess, tmp_path / "lab", **kw).path
    assert verify(pointer).ok and not verify(pointer).notes

    subprocess.run(["cp", "-rL", str(tmp_path / "lab"), str(tmp_path / "laptop")], check=True)
    copied = tmp_path / "laptop" / pointer.relative_to(tmp_path / "lab")
    assert copied.is_dir() and not copied.is_symlink()
    grown = extract(index(6), backbone, preprocess, tmp_path / "laptop", **kw)  # refused before: "move it away"
    assert grown.path == copied and copied.is_symlink() and FeatureStore.open(copied).attrs["version"] == 2
    assert verify(copied).ok

"""A flipped byte and a deleted chunk: found by `featx cache verify`, refused by `featx probe`, locally and over HTTP."""

import numpy as np
import pytest
from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cache.store import DamagedStoreError
from featx.cache.verify import verify_store
from featx.cli import app
from featx.evaluation.features import load_probe_data
from tests.cache.test_remote import publish_toy_store

runner = CliRunner()
ARRAY = "features/block_1/cls"  # what a kNN probe reads (the last layer's CLS)


def flip_a_byte(store_path, chunk):
    path = store_path / ARRAY / chunk
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def probe(target, tmp_path):
    return runner.invoke(app, ["probe", "--store", str(target), "--setting", "knn", "--k", "5", "--bootstrap", "0",
                               "--out", str(tmp_path / "results.jsonl")])


@pytest.mark.parametrize("where", ["local", "http"])
def test_flipped_byte_and_deleted_chunk_are_named_by_verify_and_refused_by_probe(tmp_path, served, where):
    path = publish_toy_store(tmp_path, n=60)  # blocks of 16 rows
    target = path if where == "local" else f"{served}/{path.relative_to(tmp_path).as_posix()}"
    clean = verify_store(FeatureStore.open(target))
    assert clean.ok and not clean.unchecked and clean.chunks_read > 0
    assert probe(target, tmp_path).exit_code == 0

    flip_a_byte(path, "c/1/0")
    (path / ARRAY / "c/3/0").unlink()
    report = verify_store(FeatureStore.open(target))
    assert [(d.array, d.chunk, d.rows, d.problem) for d in report.damage] == [
        (ARRAY, "c/1/0", (16, 32), "fails its crc32c checksum"),
        (ARRAY, "c/3/0", (48, 60), "missing"),
    ]
    cli = runner.invoke(app, ["cache", "verify", str(target)])
    assert cli.exit_code == 1 and f"{ARRAY} chunk c/1/0 (rows 16-31)" in cli.output

    refused = probe(target, tmp_path)
    assert refused.exit_code == 1 and "featx cache verify" in refused.output  # no record was scored
    assert "0 records appended" in refused.output
    (path / ARRAY / "c/1/0").unlink()  # now only missing chunks: NaN fill values, refused all the same
    with pytest.raises(DamagedStoreError, match="hold no finite features"):
        load_probe_data(FeatureStore.open(target))


def test_verify_a_cache_root_and_a_lost_written_chunk(tmp_path):
    path = publish_toy_store(tmp_path, n=40)
    ok = runner.invoke(app, ["cache", "verify", str(tmp_path)])
    assert ok.exit_code == 0 and f"ok       {path}" in ok.output
    (path / "written" / "c" / "0").unlink()  # the rows would silently vanish from probes
    with pytest.raises(DamagedStoreError, match="read as unwritten"):
        FeatureStore.open(path).valid
    assert [d.array for d in verify_store(FeatureStore.open(path)).damage] == ["written"]
    assert np.isfinite(FeatureStore.open(path).read("cls", "block_1")).all()

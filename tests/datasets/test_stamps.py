"""Fingerprints: a file rewritten with the same size and mtime is missed by `stat`, caught by `content`."""

import os

import numpy as np
import pandas as pd
from PIL import Image

from featx.cache import FeatureStore
from featx.datasets import build_index
from featx.datasets.stamps import row_stamps
from tests.pipeline.test_extract import run


def write_png(path, seed):
    """An uncompressed PNG of random pixels: its size depends only on its shape, never on its pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=0)


def test_same_size_and_mtime_rewrite_is_stale_under_stat_and_recomputed_under_content(tmp_path):
    for i in range(8):
        write_png(tmp_path / f"{i}.png", i)
    rows = [f"{i}.png,p{i},{'train' if i < 4 else 'val' if i < 6 else 'test'},{'ab'[i % 2]}" for i in range(8)]
    (tmp_path / "study.csv").write_text("path,patient_id,split,label\n" + "\n".join(rows) + "\n")
    index = build_index("csv", tmp_path / "study.csv", modality="xray")
    results = {kind: run(index, tmp_path / kind, fingerprint=kind) for kind in ("stat", "content")}
    before = {kind: FeatureStore.open(r.path).read("cls", "block_1") for kind, r in results.items()}

    target = tmp_path / "0.png"
    info = target.stat()
    write_png(target, 99)  # new pixels, same size ...
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))  # ... and the old mtime (a restore, cp -p)
    assert target.stat().st_size == info.st_size
    table = pd.DataFrame({"source": [str(target)], "mask_source": [""]})
    assert row_stamps(table, "content")[0].startswith("b2:")

    stale = run(index, tmp_path / "stat", fingerprint="stat")
    assert stale.reused  # the documented blind spot of size+mtime
    fresh = run(index, tmp_path / "content", fingerprint="content")
    assert not fresh.reused and fresh.rows_extracted == 1 and fresh.rows_reused == 7
    after = FeatureStore.open(fresh.path).read("cls", "block_1")
    assert not np.array_equal(after[0], before["content"][0])
    np.testing.assert_array_equal(after[1:], before["content"][1:])

"""Ctrl-C / SIGTERM mid-extraction: the blocks written stay, the message says so, a re-run resumes."""

import os
import re
import signal
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from featx.cache import FeatureStore
from featx.cli import app
from featx.cli.errors import EXIT_INTERRUPTED
from tests.conftest import tiny_extract_args

runner = CliRunner()


@pytest.fixture(scope="module")
def small_pngs(tmp_path_factory):
    """A CSV dataset of 32 tiny PNG images (decoding costs nothing; the store writes set the pace)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pngs")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    lines = ["path,patient_id,split,finding"]
    for i in range(32):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        lines.append(f"images/{i}.png,P{i // 2:03d},{('train', 'val', 'test')[(i // 2) % 3]},{i % 2}")
    (root / "small.csv").write_text("\n".join(lines) + "\n")
    return root / "small.csv"


def _args(csv, cache, block_rows=1):
    # one row per block: a block lands every few milliseconds, so the run can be stopped halfway
    return tiny_extract_args("csv", csv, cache, "--workers", "0", "--batch-size", "1", "--block-rows", str(block_rows))


def _signal_once_rows_land(cache, signum, stop):
    """Send ``signum`` to this process as soon as the partial store holds a written block."""
    while not stop.is_set():
        for partial in cache.glob("*/*/*.zarr.partial"):
            try:
                if FeatureStore.open(partial, allow_partial=True).written.any():
                    os.kill(os.getpid(), signum)
                    return
            except Exception:  # noqa: BLE001 - the store is still being laid out; look again
                pass
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_keeps_the_saved_rows_and_a_rerun_resumes(small_pngs, tmp_path, signum):
    cache = tmp_path / "cache"
    stop = threading.Event()
    watcher = threading.Thread(target=_signal_once_rows_land, args=(cache, signum, stop), daemon=True)
    watcher.start()
    try:
        stopped = runner.invoke(app, _args(small_pngs, cache))
    finally:
        stop.set()
        watcher.join()
    assert stopped.exit_code == EXIT_INTERRUPTED, stopped.output
    found = re.search(r"interrupted: (\d+) rows saved in (\S+); re-run the same command to resume", stopped.output)
    assert found, stopped.output
    saved, partial = int(found.group(1)), found.group(2)
    store = FeatureStore.open(partial, allow_partial=True)
    assert 0 < saved < store.n_rows and int(store.written.sum()) == saved
    assert "Traceback" not in stopped.output

    resumed = runner.invoke(app, _args(small_pngs, cache, block_rows=4))
    assert resumed.exit_code == 0, resumed.output
    assert f"--block-rows 4 ignored: resuming {partial}, laid out with 1 rows per block" in resumed.output
    assert f"extracted {store.n_rows - saved} rows" in resumed.output
    final = FeatureStore.open(re.search(r"store: (\S+)", resumed.output).group(1))
    assert final.is_complete and final.written.all()

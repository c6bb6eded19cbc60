"""`featx extract` stopped while images are decoded into the pixel store (real processes and signals).

Ctrl-C ends the run with the one ``interrupted:`` line, every time; kill -9 of the run
leaves no decoding process behind (nor its lock files or pipes), and the next run completes.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from featx.cache import FeatureStore
from tests.conftest import tiny_extract_args
from tests.pipeline.test_decode_pool import group_members

pytestmark = pytest.mark.slow  # each run starts torch in a fresh process


@pytest.fixture(scope="module")
def big_pngs(tmp_path_factory):
    """160 rows of one 1024 x 1024 noise PNG (hard links): decoding takes seconds, the files take 1 MB."""
    from PIL import Image

    root = tmp_path_factory.mktemp("big")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1024, 1024), dtype=np.uint8)).save(root / "base.png")
    lines = ["path,patient_id,split,finding"]
    for i in range(160):
        os.link(root / "base.png", root / f"{i}.png")
        lines.append(f"{i}.png,P{i // 2:03d},{('train', 'val', 'test')[(i // 2) % 3]},{i % 2}")
    (root / "big.csv").write_text("\n".join(lines) + "\n")
    return root / "big.csv"


def start_extract(csv, cache):
    command = [sys.executable, "-m", "featx", *tiny_extract_args("csv", csv, cache, "--workers", "0",
                                                                 "--decode-workers", "2")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONUNBUFFERED="1")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for_decoders(process):
    """The run's decoding processes, once both have started (the run is then decoding)."""
    main = psutil.Process(process.pid)
    while process.poll() is None:
        children = main.children()
        if len(children) >= 2:
            return children
        time.sleep(0.05)
    raise AssertionError(f"the run ended before decoding: {process.communicate()}")


def test_ctrl_c_while_decoding_stops_the_run_every_time_and_the_next_run_resumes(big_pngs, tmp_path):
    cache = tmp_path / "cache"
    for attempt in range(5):
        process = start_extract(big_pngs, cache)
        decoders = wait_for_decoders(process)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
        out, err = process.communicate(timeout=60)  # the bug hung here for minutes
        assert process.returncode == 130, (attempt, err[-2000:])
        said = [line for line in err.splitlines() if line.startswith("interrupted:")]
        assert len(said) == 1 and "re-run the same command to resume" in said[0], err[-2000:]
        assert "Traceback" not in err, err[-2000:]
        psutil.wait_procs(decoders, timeout=30)
        assert group_members(process.pid) == []
    process = start_extract(big_pngs, cache)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    assert "waiting for another build" not in err
    [store] = cache.glob("*/*/*.zarr")
    assert FeatureStore.open(store).valid.sum() == 160


def test_kill_9_while_decoding_leaves_no_process_behind_and_the_next_run_completes(big_pngs, tmp_path):
    cache = tmp_path / "cache"
    process = start_extract(big_pngs, cache)
    decoders = wait_for_decoders(process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    gone, alive = psutil.wait_procs(decoders, timeout=30)
    assert not alive
    process.communicate(timeout=60)  # a supervisor reading the run's output sees it end
    assert group_members(process.pid) == []
    [partial] = cache.glob("*/_pixels/*.pixels.partial")  # the killed build's work, kept to resume
    again = start_extract(big_pngs, cache)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    assert "waiting for another build" not in err
    [store] = cache.glob("*/*/*.zarr")
    assert FeatureStore.open(store).valid.sum() == 160 and not partial.exists()

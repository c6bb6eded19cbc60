"""The decoding pool dies with its run: kill -9 of the parent, Ctrl-C, an error (real processes and signals)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from featx.pipeline.decode_pool import decode_pool

# A parent that fills a pool of 2 with units that block, says its workers' pids, then waits on them.
PARENT = textwrap.dedent("""
    import os, sys, time
    from concurrent.futures import wait
    from featx.pipeline.decode_pool import decode_pool

    def unit(seconds):
        time.sleep(seconds)
        return b"x" * 2**20  # a result bigger than a pipe's buffer

    with open(sys.argv[1], "w") as lock, decode_pool(2) as pool:  # the lock file a build holds
        futures = [pool.submit(unit, 600) for _ in range(8)]
        while len(pool._processes) < 2:
            time.sleep(0.05)
        print(" ".join(str(pid) for pid in pool._processes), flush=True)
        wait(futures)
""")


def start_parent(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "build.lock")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    workers = [psutil.Process(int(pid)) for pid in process.stdout.readline().split()]
    assert len(workers) == 2 and all(w.ppid() == process.pid for w in workers)
    return process, workers


def group_members(pgid):
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            pass
    return found


def test_workers_die_with_a_killed_parent_and_let_go_of_its_pipes(tmp_path):
    process, workers = start_parent(tmp_path)
    for worker in workers:  # no worker holds the caller's stdout/stderr (once its initializer has run)
        deadline = time.monotonic() + 30
        while (targets := {os.readlink(f"/proc/{worker.pid}/fd/{fd}") for fd in (0, 1, 2)}) != {os.devnull}:
            assert time.monotonic() < deadline, targets
            time.sleep(0.05)
    process.kill()
    process.wait()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    out, err = process.communicate(timeout=30)  # EOF: nothing else holds the pipes
    assert group_members(process.pid) == []


@pytest.mark.parametrize("to_group", [True, False])
def test_one_ctrl_c_stops_the_pool_without_waiting_on_its_workers(tmp_path, to_group):
    process, workers = start_parent(tmp_path)
    if to_group:  # a terminal's Ctrl-C reaches every process of the foreground group
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode != 0 and "KeyboardInterrupt" in err
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive and group_members(process.pid) == []
    assert err.count("Traceback") == 1  # the parent's own; the workers ignore SIGINT and say nothing


def test_a_pool_that_ends_normally_returns_results():
    with decode_pool(2) as pool:
        assert list(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]

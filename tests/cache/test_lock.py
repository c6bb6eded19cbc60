"""The extraction lock: names its holder's pid and host; forked workers never hold it; kill -9 frees it."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from featx.cache import StoreError
from featx.cache.lock import exclusive_lock, is_locked

HOLDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from featx.cache.lock import exclusive_lock
    with exclusive_lock(Path(sys.argv[1])):
        if sys.argv[2] == "fork" and os.fork() == 0:  # a child like a DataLoader worker, outliving its parent
            time.sleep(60)
            os._exit(0)
        print("held", flush=True)
        time.sleep(60)
""")


def hold(path, mode="plain"):
    """A real process holding the lock at ``path`` (returns once it holds it)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.getcwd()}, start_new_session=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_told_the_holders_pid_and_host(tmp_path):
    lock = tmp_path / "k.lock"
    holder = hold(lock)
    try:
        assert is_locked(lock)
        with pytest.raises(StoreError, match=f"another extraction .*pid {holder.pid} on {socket.gethostname()}"), \
                exclusive_lock(lock):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_kill_9_frees_the_lock_at_once_even_while_forked_workers_live(tmp_path):
    lock = tmp_path / "k.lock"
    holder = hold(lock, "fork")
    try:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 0.5  # no ~5 s wait for workers to notice
        while is_locked(lock) and time.monotonic() < deadline:
            time.sleep(0.01)
        with exclusive_lock(lock):
            assert f"pid {os.getpid()} " in lock.read_text()
        assert lock.read_text() == ""  # released and cleared
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # the forked child, in the holder's session

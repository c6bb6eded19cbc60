"""The probe grid on Dask: the same records as a local run, one writer, and a killed worker loses nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from featx.cache import FeatureStore
from featx.evaluation.records import read_jsonl
from featx.probes.grid import grid_units, run_probe_grid
from featx.probes.job import ProbeJob
from featx.probes.runner import run_probes

VARYING = ("created", "seconds_search", "command")  # when, how fast, which results file: not what


def _lines(path, failures=False):
    records = read_jsonl(path) + (read_jsonl(path, failures=True) if failures else [])
    return [json.dumps({k: v for k, v in r.items() if k not in VARYING}, sort_keys=True) for r in records]


@pytest.fixture
def two_stores(store_factory):
    return [str(store_factory(task="multiclass", dataset="a", n_patients=60)),
            str(store_factory(task="binary", dataset="b", n_patients=60, seed=1))]


def _job(stores, out, settings=("knn", "linear", "mlknn"), **options):
    return ProbeJob(stores=stores, settings=settings, out=out, ks=[5, 10], bootstrap=20, val_bootstrap=5,
                    linear_backend="sklearn", **options)


def test_the_grid_on_a_local_cluster_writes_what_a_local_run_writes_in_the_same_order(two_stores, tmp_path):
    import distributed

    local = run_probes(_job(two_stores, tmp_path / "local.jsonl"))
    job = _job(two_stores, tmp_path / "grid.jsonl")
    units = grid_units(job)  # the version each store points at now: every task reads that one
    assert [(FeatureStore.open(u.stores[0]).dataset, u.settings) for u in units] == [
        (dataset, (setting,)) for dataset in ("a", "b") for setting in ("knn", "linear", "mlknn")]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        [grid] = run_probe_grid([job], client, progress=False)
    assert _lines(tmp_path / "grid.jsonl") == _lines(tmp_path / "local.jsonl")  # values and order
    assert len(grid.records) == len(local.records) and grid.problems == local.problems
    assert {r["command"] for r in read_jsonl(tmp_path / "grid.jsonl")} == {job.command_line()}  # the user's job
    failures = read_jsonl(tmp_path / "grid.jsonl", failures=True)  # mlknn asked of single-label data
    assert [(f["dataset"], f["setting"]) for f in failures] == [("a", "mlknn"), ("b", "mlknn")]
    assert failures == [{**f, "created": g["created"], "command": g["command"]} for f, g in
                        zip(read_jsonl(tmp_path / "local.jsonl", failures=True), failures, strict=True)]


def _start(command, log):
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(two_stores, tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1; one is killed while it probes."""
    import distributed

    bin_dir = os.path.dirname(sys.executable)
    scheduler_file = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("w")
    processes = [_start([f"{bin_dir}/dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", str(scheduler_file)], log)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [_start([f"{bin_dir}/dask", "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                           "--no-nanny", "--no-dashboard", "--name", f"w{i}"], log) for i in range(2)]
        processes += workers
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            by_pid = {pid: address for address, pid in client.run(os.getpid).items()}
            job = _job(two_stores, tmp_path / "grid.jsonl", ("knn", "linear"), seed=1)

            def kill_one_busy_worker():
                while True:
                    busy = [address for address, tasks in client.processing().items() if tasks]
                    if busy:
                        victim = next(pid for pid, address in by_pid.items() if address == busy[0])
                        os.kill(victim, signal.SIGKILL)  # the node is gone: no goodbye to the scheduler
                        killed.append(victim)
                        return
                    time.sleep(0.05)

            import threading

            killed: list[int] = []
            killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
            killer.start()
            [grid] = run_probe_grid([job], client, progress=False)
            killer.join(timeout=60)
            assert killed and killed[0] in {w.pid for w in workers}
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    local = run_probes(_job(two_stores, tmp_path / "local.jsonl", ("knn", "linear"), seed=1))
    written = _lines(tmp_path / "grid.jsonl", failures=True)
    assert len(written) == len(grid.records) == len(local.records) and not grid.failures and grid.ok
    assert written == _lines(tmp_path / "local.jsonl", failures=True)  # nothing lost, nothing twice, same order

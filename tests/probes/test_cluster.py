"""The probe grid on Dask: the same records as a local run, in its order, and a killed worker loses nothing."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from distributed import Client, LocalCluster

from featx.cache import FeatureStore
from featx.cache.key import cache_key
from featx.cache.store import store_dir
from featx.probes.cluster import grid_jobs, run_probes_on_cluster
from featx.probes.job import ProbeJob
from featx.probes.runner import run_probes
from tests.cache.test_store import make_index

DATASETS = ("toy_a", "toy_b", "toy_c")


def publish(cache, dataset, n=60, seed=0):
    index = dataclasses.replace(make_index(n), dataset=dataset)
    key, inputs = cache_key(dataset=dataset, backbone={"name": "toy"}, weights_hash="h", preprocessing={})
    path = store_dir(cache, dataset, "toy") / f"{key}.zarr.partial"
    path.parent.mkdir(parents=True)
    store = FeatureStore.create(path, key=key, key_inputs=inputs, index=index, feature_dims={"block_0": 3, "block_1": 3},
                                block_rows=30, provenance={"backbone": {"name": "toy", "random_init": True}})
    rng = np.random.default_rng(seed)
    labels = store.labels
    for block in range(store.n_blocks):
        rows = store.block_slice(block)
        feats = (labels[rows] @ np.array([[3.0, 0, 0], [0, 3.0, 0]]) + rng.normal(0, 0.5, (rows.stop - rows.start, 3)))
        feats = feats.astype(np.float16)
        store.write_block(block, {"block_0": {"cls": feats, "pooled": feats}, "block_1": {"cls": feats, "pooled": feats}},
                          np.zeros(rows.stop - rows.start, bool), [""] * (rows.stop - rows.start))
    return store.publish()


@pytest.fixture()
def cache(tmp_path):
    root = tmp_path / "cache"
    for seed, dataset in enumerate(DATASETS):
        publish(root, dataset, seed=seed)
    return root


def job_for(cache, out):
    return ProbeJob(out=out, cache=cache, datasets=DATASETS, backbones=("toy",), settings=("knn", "linear"),
                    multilabel_knn="weighted", ks=(5, 10), epochs=2, lrs=(1e-2,), bootstrap=50, val_bootstrap=10)


def numbers(path):
    """What a record says, without when and how fast: one tuple per line, in file order."""
    keep = ("store_key", "store_version", "setting", "split", "metric", "class", "value", "ci_low", "ci_high",
            "job_setting", "job_fingerprint", "test_use")
    return [json.dumps({k: r.get(k) for k in keep} | {"hyper": r.get("hyperparameters")}, sort_keys=True)
            for r in map(json.loads, path.read_text().splitlines())]


def test_the_grid_is_one_job_per_store_and_setting_in_local_order(cache, tmp_path):
    problems = []
    grid = grid_jobs(job_for(cache, tmp_path / "r.jsonl"), problems)
    assert not problems and [g.position for g in grid] == list(range(6))
    assert [(g.job.settings, g.job.cache, g.job.out) for g in grid[:2]] == [(("knn",), None, None), (("linear",), None, None)]
    assert all(g.job.stores[0].endswith("v0001.zarr") for g in grid)  # pinned to the version published now


@pytest.mark.slow
def test_a_local_cluster_writes_the_records_of_a_local_run_in_its_order(cache, tmp_path):
    local, remote = tmp_path / "local.jsonl", tmp_path / "cluster.jsonl"
    run_probes(job_for(cache, local))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        run = run_probes_on_cluster(job_for(cache, remote), client)
    assert run.ok and len(run.records) == len(numbers(remote))
    assert {r["command"] for r in map(json.loads, remote.read_text().splitlines())} == {job_for(cache, remote).command_line()}
    assert numbers(remote) == numbers(local) and len(set(numbers(local))) == len(numbers(local))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def dask_processes(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead) on 127.0.0.1."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    common = {"env": env, "cwd": tmp_path, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], **common)
    workers = [subprocess.Popen([sys.executable, "-m", "dask", "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"], **common)
               for i in range(2)]
    yield f"tcp://127.0.0.1:{port}"
    for process in [*workers, scheduler]:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(cache, tmp_path, dask_processes):
    local, remote = tmp_path / "local.jsonl", tmp_path / "cluster.jsonl"
    run_probes(job_for(cache, local))
    killed = []
    with Client(dask_processes, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        pids = client.run(os.getpid)

        def kill_a_busy_worker():
            deadline = time.monotonic() + 120
            while not killed and time.monotonic() < deadline:
                busy = [w for w, keys in client.processing().items() if any("featx-probe" in str(k) for k in keys)]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                time.sleep(0.02)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        run = run_probes_on_cluster(job_for(cache, remote), client)
        killer.join()
        assert len(killed) == 1 and killed[0] not in client.scheduler_info()["workers"]
    assert run.ok
    assert numbers(remote) == numbers(local)  # nothing lost, nothing twice, same order

import numpy as np
import pytest
from distributed import get_task_stream

from featx.backbones.request import BackboneRequest
from featx.cache import FeatureStore
from featx.datasets import build_index
from featx.datasets.preprocess import PreprocessConfig
from featx.pipeline.dask_extract import dask_runner
from featx.pipeline.extract import extract
from tests.conftest import TINY_SIZE, TINY_VIT
from tests.pipeline.test_extract import store_arrays


@pytest.fixture(scope="module")
def client():
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_blocks_spread_over_a_dask_cluster_give_the_same_store(demo_data, tmp_path, client):
    import torch

    index = build_index("csv", demo_data.xray_csv, modality="xray")
    request = BackboneRequest("dinov2_vits14", img_size=TINY_SIZE, random_init=True, n_last=2,
                              model_overrides=tuple(TINY_VIT.items()))
    preprocess = PreprocessConfig.for_modality("xray", TINY_SIZE)
    backbone = request.load()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the Dask workers run torch with one thread each: compare like with like
    try:
        local = extract(index, backbone, preprocess, tmp_path / "local", batch_size=8, num_workers=0,
                        block_rows=16, progress=False)
    finally:
        torch.set_num_threads(threads)
    runner = dask_runner(client, index, request, preprocess, batch_size=8, blocks_per_task=2)
    with get_task_stream(client) as stream:
        spread = extract(index, backbone, preprocess, tmp_path / "dask", block_rows=16, runner=runner, progress=False)
    assert spread.key == local.key and spread.rows_extracted == len(index)
    workers = {task["worker"] for task in stream.data if "_run_task" in str(task["key"])}
    assert len(workers) == 2, "both workers should have written blocks"
    store = FeatureStore.open(spread.path)
    assert store.valid.all() and store.n_blocks > 2
    expected, actual = store_arrays(local.path), store_arrays(spread.path)
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)


def test_featx_extract_with_a_scheduler_address_spreads_blocks(demo_data, tmp_path, client):
    from typer.testing import CliRunner

    from featx.cli import app
    from tests.conftest import tiny_extract_args

    args = tiny_extract_args("csv", demo_data.ct_csv, tmp_path, "--modality", "ct", "--block-rows", "32",
                             "--scheduler", client.scheduler.address)
    with get_task_stream(client) as stream:
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert any("_run_task" in str(task["key"]) for task in stream.data)
    [store] = tmp_path.glob("*/*/*.zarr")
    assert FeatureStore.open(store).valid.all()


def test_a_pixel_store_decoded_by_dask_workers_equals_a_local_build(demo_data, tmp_path, client):
    from featx.pipeline.pixel_build import build_pixel_store
    from tests.pipeline.test_pixel_build import pixel_arrays

    index = build_index("csv", demo_data.ct_csv, modality="ct")
    preprocess = PreprocessConfig.for_modality("ct", TINY_SIZE)
    local = build_pixel_store(index, preprocess, tmp_path / "local", workers=0, block_rows=16, progress=False)
    with get_task_stream(client) as stream:
        spread = build_pixel_store(index, preprocess, tmp_path / "dask", client=client, block_rows=16, progress=False)
    assert {task["worker"] for task in stream.data if "decode_unit" in str(task["key"])}, "workers should decode"
    assert spread.key == local.key and spread.rows_decoded == len(index)
    expected, actual = pixel_arrays(local.path), pixel_arrays(spread.path)
    for name in expected:
        np.testing.assert_array_equal(expected[name], actual[name], err_msg=name)

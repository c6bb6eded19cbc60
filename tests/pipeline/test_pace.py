"""Block sizes paced by the measured rate, so a slow extraction still saves a block every ~30 s."""

import time

import torch

from featx.pipeline.pace import PROBE_IMAGES, SECONDS_PER_BLOCK, measure_rows_per_second, paced_block_rows
from tests.conftest import tiny_backbone


def test_blocks_shrink_on_a_slow_device_and_stay_batch_aligned():
    assert paced_block_rows(1024, rows_per_second=1000.0, batch_size=64) == 1024  # a GPU: unchanged
    slow = paced_block_rows(1024, rows_per_second=10.0, batch_size=64)  # 300 rows fit in 30 s
    assert slow % 64 == 0 and slow <= 10.0 * SECONDS_PER_BLOCK and slow > 10.0 * SECONDS_PER_BLOCK - 64
    crawling = paced_block_rows(1024, rows_per_second=0.5, batch_size=64)  # a big ViT on a CPU
    assert crawling == 8 and crawling <= 0.5 * SECONDS_PER_BLOCK
    assert paced_block_rows(1024, rows_per_second=0.001, batch_size=64) == 1


def test_the_rate_is_measured_with_a_real_forward():
    backbone = tiny_backbone()
    started = time.perf_counter()
    rate = measure_rows_per_second(backbone, torch.device("cpu"))
    elapsed = time.perf_counter() - started
    assert rate >= PROBE_IMAGES / elapsed  # the timed forward is part of the call, warm-up left out

"""Block sizing by speed: on a slow device a block still lands (and is saved) every ~30 s.

A store's block is the unit that is written, so the unit an interrupted extraction
keeps. 1024 rows is right on a GPU; on a CPU running a large ViT it can take many
minutes, and Ctrl-C before the first block lands would lose everything. The rate is
measured with one short timed forward before the store is laid out.
"""

from __future__ import annotations

import time

import torch

from featx.backbones import LoadedBackbone

SECONDS_PER_BLOCK = 30.0
PROBE_IMAGES = 2


def measure_rows_per_second(backbone: LoadedBackbone, device: torch.device, images: int = PROBE_IMAGES) -> float:
    """Forward-only rows/s of ``backbone`` on ``device``: one warm-up image, then ``images`` timed."""
    model = backbone.model.to(device).eval()
    size = backbone.img_size
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size, device=device))
        batch = torch.zeros(images, 3, size, size, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return images / max(time.perf_counter() - started, 1e-9)


def paced_block_rows(rows: int, rows_per_second: float, batch_size: int, seconds: float = SECONDS_PER_BLOCK) -> int:
    """``rows`` cut so that one block takes about ``seconds`` at ``rows_per_second``.

    At or above ``batch_size`` the result stays a multiple of it, so batches (and so the
    features) are the same as with any other such block size; below, a power of two.
    """
    fits = int(rows_per_second * seconds)
    if fits >= rows:
        return rows
    if fits >= batch_size:
        return fits - fits % batch_size
    return max(1, 1 << max(fits, 1).bit_length() - 1)

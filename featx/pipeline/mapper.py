"""Mapper stage: uint8 batches -> backbone features on the host, keeping the device busy.

Each batch is normalised on the device, run through the frozen backbone (bf16
autocast on GPU), packed into one float16 tensor and copied to pinned host memory
without blocking. A batch's features are handed back only once ``depth`` newer
batches are queued on the device, so the GPU does not wait while Python hands
features to the writer or waits for the next batch.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from featx.backbones import LoadedBackbone

Layout = list[tuple[str, str, tuple[int, ...]]]


@dataclass
class _InFlight:
    host: torch.Tensor
    done: torch.cuda.Event | None
    layout: Layout
    payload: Any


def pack(outputs: dict[str, dict[str, torch.Tensor]]) -> tuple[torch.Tensor, Layout]:
    """All layers' features of a batch as one ``(B, F)`` float16 tensor, and how to unpack it."""
    layout = [(layer, kind, tuple(t.shape[1:])) for layer, kinds in outputs.items() for kind, t in kinds.items()]
    parts = [t.reshape(t.shape[0], -1).to(torch.float16) for kinds in outputs.values() for t in kinds.values()]
    return torch.cat(parts, dim=1), layout


def unpack(flat: np.ndarray, layout: Layout) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of :func:`pack` on the host (views, no copies)."""
    features: dict[str, dict[str, np.ndarray]] = {}
    column = 0
    for layer, kind, shape in layout:
        width = math.prod(shape)
        features.setdefault(layer, {})[kind] = flat[:, column : column + width].reshape(-1, *shape)
        column += width
    return features


class DeviceMapper:
    """Runs the backbone on a device; ``submit`` a batch, get earlier batches' features back."""

    def __init__(self, backbone: LoadedBackbone, device: torch.device, depth: int = 2) -> None:
        self.device = device
        self.depth = depth
        self.on_gpu = device.type == "cuda"
        self.model = backbone.model.to(device).eval()
        self.mean = torch.tensor(backbone.spec.mean, device=device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(backbone.spec.std, device=device).view(1, 3, 1, 1) * 255.0
        self.in_flight: deque[_InFlight] = deque()

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.on_gpu else contextlib.nullcontext()

    def submit(self, pixels: torch.Tensor, payload: Any) -> Iterator[tuple[dict[str, dict[str, np.ndarray]], Any]]:
        """Queue one uint8 ``(B, 3, S, S)`` batch; yield (features, payload) of batches that left the queue."""
        with torch.inference_mode(), self._autocast():
            x = (pixels.to(self.device, non_blocking=True).float() - self.mean) / self.std
            flat, layout = pack(self.model(x))
        if self.on_gpu:
            host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
            host.copy_(flat, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        else:
            host, done = flat, None
        self.in_flight.append(_InFlight(host, done, layout, payload))
        while len(self.in_flight) > self.depth:
            yield self._land(self.in_flight.popleft())

    def flush(self) -> Iterator[tuple[dict[str, dict[str, np.ndarray]], Any]]:
        """Yield every batch still in flight, oldest first."""
        while self.in_flight:
            yield self._land(self.in_flight.popleft())

    @staticmethod
    def _land(item: _InFlight) -> tuple[dict[str, dict[str, np.ndarray]], Any]:
        if item.done is not None:
            item.done.synchronize()
        return unpack(item.host.numpy(), item.layout), item.payload

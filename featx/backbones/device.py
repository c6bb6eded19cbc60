"""Which torch device a run uses: CUDA only where it is present, never a silent fall-back to the CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str) -> torch.device:
    """A torch device, refusing CUDA where none is present rather than silently using the CPU."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {device} was asked for, but torch sees no CUDA device here")
    return torch.device(device)

"""Checks a command makes before it loads anything: the device, the cache folder, an up-to-date store.

Each failure is a :class:`CheckError` whose message is one sentence naming the
option or path and what to do; nothing has been created when it is raised.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEVICE_FORMS = "cpu, cuda or cuda:N"


class CheckError(ValueError):
    """A problem with the environment or the options, found before any work started."""


def check_device(device: str) -> str:
    """``device`` if it names a usable device; refuses typos and CUDA without a GPU."""
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise CheckError(f"--device {device}: not a device featx knows; use {DEVICE_FORMS}")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CheckError(f"--device {device}: torch sees no CUDA GPU on this machine; use --device cpu")
        wanted = int(device.split(":")[1]) if ":" in device else 0
        if wanted >= torch.cuda.device_count():
            raise CheckError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                f"use cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    return device


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_is_writable(folder: Path) -> bool:
    """Whether files could be created in ``folder`` (or its first existing ancestor).

    Tried for real with a temporary file that is removed at once: permission bits do not
    tell for root, read-only mounts or immutable folders.
    """
    import tempfile

    existing = _first_existing(folder.expanduser().resolve())
    if not existing.is_dir():
        return False
    try:
        handle, name = tempfile.mkstemp(prefix=".featx-write-check-", dir=existing)
    except OSError:
        return False
    os.close(handle)
    os.unlink(name)
    return True


def check_cache_folder(cache: Path) -> None:
    """Refuse a cache path that is a file, or lies under a file."""
    resolved = cache.expanduser().resolve()
    existing = _first_existing(resolved)
    if not existing.is_dir():
        where = "" if existing == resolved else f" (it would go under {existing}, which is a file)"
        raise CheckError(f"--cache {cache} is not a folder{where}; give a folder for the feature stores")


def read_only_error(cache: Path) -> CheckError:
    """The one sentence for a cache featx would have to write to but cannot."""
    return CheckError(
        f"--cache {cache} is read-only and holds no complete store for this request; "
        "give a writable --cache folder (or ask its owner to extract this store)"
    )

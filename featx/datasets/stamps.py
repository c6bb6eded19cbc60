"""File fingerprints: tell an unchanged input from a new or edited one.

Two kinds (``featx extract --fingerprint``):

- ``stat`` (default): ``size:mtime_ns``, no file is read. Misses a file rewritten with
  the same size and modification time (a copy with ``cp -p``, ``rsync -t``, a restore).
- ``content``: a BLAKE2b digest of the bytes (``b2:<hex>``). Catches every edit, at the
  cost of reading every input once per run (about the cost of decoding it again).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

FINGERPRINTS = ("stat", "content")
_READ_BYTES = 2**20


def _content_digest(path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_stamp(path: str, fingerprint: str = "stat") -> str:
    """A file's fingerprint; for a folder (a DICOM series) a digest over its files; ``missing``."""
    if fingerprint not in FINGERPRINTS:
        raise ValueError(f"--fingerprint: expected one of {FINGERPRINTS}, got {fingerprint!r}")
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    if not Path(path).is_dir():
        return f"b2:{_content_digest(path)}" if fingerprint == "content" else f"{info.st_size}:{info.st_mtime_ns}"
    digest = hashlib.sha256()
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_file():
            if fingerprint == "content":
                digest.update(f"{entry.name}:{_content_digest(entry.path)};".encode())
            else:
                stat = entry.stat()
                digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "dir:" + digest.hexdigest()[:16]


def row_stamps(table: pd.DataFrame, fingerprint: str = "stat") -> np.ndarray:
    """One fingerprint per row: its pixel source and, if any, its mask (each file done once)."""
    cache: dict[str, str] = {}

    def stamp(path: str) -> str:
        if path not in cache:
            cache[path] = file_stamp(path, fingerprint)
        return cache[path]

    return np.array(
        [stamp(s) + ("|" + stamp(m) if m else "") for s, m in zip(table["source"], table["mask_source"])], dtype=str
    )

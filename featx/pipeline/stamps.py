"""File fingerprints: tell an unchanged input from a new or edited one without reading it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd


def file_stamp(path: str) -> str:
    """``size:mtime_ns`` of a file; for a folder (a DICOM series) a digest over its files; ``missing``."""
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    if not Path(path).is_dir():
        return f"{info.st_size}:{info.st_mtime_ns}"
    digest = hashlib.sha256()
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_file():
            stat = entry.stat()
            digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return "dir:" + digest.hexdigest()[:16]


def row_stamps(table: pd.DataFrame) -> np.ndarray:
    """One fingerprint per row: its pixel source and, if any, its mask (each file stat-ed once)."""
    cache: dict[str, str] = {}

    def stamp(path: str) -> str:
        if path not in cache:
            cache[path] = file_stamp(path)
        return cache[path]

    return np.array(
        [stamp(s) + ("|" + stamp(m) if m else "") for s, m in zip(table["source"], table["mask_source"])], dtype=str
    )

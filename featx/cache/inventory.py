"""What a cache root holds: every store, published or partial, with its state and size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from featx.cache.select import StoreFacts
from featx.cache.store import PARTIAL_SUFFIX, PUBLISHED_SUFFIX, FeatureStore, StoreError


def _size_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def list_stores(cache_root: str | Path) -> pd.DataFrame:
    """One row per store under ``cache_root``: dataset, backbone, key, state, rows, failures, size."""
    root = Path(cache_root).expanduser().resolve()
    rows = []
    for path in sorted(root.glob(f"*/*/*{PUBLISHED_SUFFIX}*")):
        if not (path.name.endswith(PUBLISHED_SUFFIX) or path.name.endswith(PARTIAL_SUFFIX)):
            continue
        try:
            store = FeatureStore.open(path, allow_partial=True)
        except StoreError as exc:
            rows.append({"dataset": path.parent.parent.name, "backbone": path.parent.name, "state": f"unreadable: {exc}"})
            continue
        attrs = store.attrs
        written = store.written
        rows.append(
            {
                "dataset": attrs["dataset"],
                "backbone": attrs.get("backbone", {}).get("name"),
                "key": store.key,
                "version": attrs.get("version"),
                "state": "published" if path.name.endswith(PUBLISHED_SUFFIX) else "partial",
                "rows": store.n_rows,
                "written": int(written.sum()),
                "failed": int((written & ~store.valid).sum()),
                "img_size": attrs.get("backbone", {}).get("img_size"),
                "random_init": attrs.get("backbone", {}).get("random_init"),
                **StoreFacts.of(attrs).columns(),  # weights, layers, patch_tokens, preprocessing
                "size_mib": round(_size_bytes(path) / 2**20, 1),
                "completed": attrs.get("completed", ""),
                "path": str(path),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.replace({np.nan: None}) if not frame.empty else frame

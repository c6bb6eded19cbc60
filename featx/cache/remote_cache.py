"""A cache on an object store or web server (any fsspec URL): its stores, found by their pointer documents.

``featx cache push`` lays a bucket out as a local cache is (``<dataset>/<backbone>/...``),
with a ``<key>.pointer.json`` per store and no symlinks; a store is named by its pointer's
URL (``.../<key>.zarr``), which :meth:`featx.cache.FeatureStore.open` resolves through the
document to the version it names.
"""

from __future__ import annotations

import pandas as pd

from featx.cache.pointer import POINTER_SUFFIX
from featx.cache.select import StoreFacts
from featx.cache.store import PUBLISHED_SUFFIX, FeatureStore, StoreError


def remote_stores(url: str) -> list[str]:
    """``url`` itself if it names a store (``.../<key>.zarr``), else every store under a cache root URL."""
    import fsspec

    url = url.rstrip("/")
    if url.endswith(PUBLISHED_SUFFIX):
        return [url]
    filesystem, root = fsspec.core.url_to_fs(url)
    found = sorted(filesystem.glob(f"{root}/*/*/*{POINTER_SUFFIX}"))
    return [f"{url}/{path[len(root) + 1 : -len(POINTER_SUFFIX)]}{PUBLISHED_SUFFIX}" for path in found]


def list_remote_stores(url: str) -> pd.DataFrame:
    """One row per store under the cache root ``url``: what ``featx cache ls`` shows for a local cache."""
    rows = []
    for store_url in remote_stores(url):
        try:
            store = FeatureStore.open(store_url)
        except (StoreError, ValueError) as exc:
            rows.append({"key": store_url.rsplit("/", 1)[-1], "state": f"unreadable: {exc}"})
            continue
        attrs = store.attrs
        backbone = attrs.get("backbone", {})
        written = store.written
        rows.append({
            "dataset": attrs["dataset"],
            "backbone": backbone.get("name"),
            "key": store.key,
            "version": attrs.get("version"),
            "state": "published",
            "rows": store.n_rows,
            "written": int(written.sum()),
            "failed": int((written & ~store.valid).sum()),
            "img_size": backbone.get("img_size"),
            **StoreFacts.of(attrs).columns(),
            "completed": attrs.get("completed", ""),
            "path": store_url,
        })
    return pd.DataFrame(rows)

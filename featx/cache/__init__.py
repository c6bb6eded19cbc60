"""The feature cache: Zarr v3 stores keyed by what determines their features."""

from featx.cache.key import SCHEMA_VERSION, cache_key
from featx.cache.pixels import PixelStore
from featx.cache.store import FeatureStore, StoreError, find_store, store_dir

__all__ = ["SCHEMA_VERSION", "FeatureStore", "PixelStore", "StoreError", "cache_key", "find_store", "store_dir"]

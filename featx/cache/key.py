"""Cache keys: a hash of exactly what determines a store's features."""

from __future__ import annotations

import hashlib
import json
from typing import Any

SCHEMA_VERSION = 2  # 2: crc32c on every chunk, versioned publishes


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace, so equal inputs hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def cache_key(
    *, dataset: str, backbone: dict[str, Any], weights_hash: str, preprocessing: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The key of a store and the inputs it hashes.

    ``backbone`` is the backbone's full feature config (name, image size, layers,
    overrides...), ``preprocessing`` the full intensity/resize config. The schema
    version is included so a layout change never reuses an old store.
    """
    inputs = {
        "schema": SCHEMA_VERSION,
        "dataset": dataset,
        "backbone": backbone,
        "weights_hash": weights_hash,
        "preprocessing": preprocessing,
    }
    digest = hashlib.sha256(canonical_json(inputs).encode()).hexdigest()
    return digest[:16], inputs

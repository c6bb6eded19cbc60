"""Whether a store's recorded provenance agrees with its key: what `featx cache verify` recomputes.

The key is the hash of ``key_inputs`` (featx.cache.key); the folder a store lies in is
named by its key; and what every probe record carries (weights hash, random init,
preprocessing, dataset, backbone config) must be what the key inputs say.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from featx.cache.key import canonical_json
from featx.cache.manifest import sha256

RANDOM_INIT = "random-init"
_KEY = re.compile(r"^[0-9a-f]{16}$")


def key_of(key_inputs: dict[str, Any]) -> str:
    """The key ``key_inputs`` hash to (featx.cache.key.cache_key)."""
    return sha256(canonical_json(key_inputs).encode())[:16]


def named_key(path: str | Path) -> str | None:
    """The key a store's folder or URL names (``<key>.versions/vNNNN.zarr``, ``<key>.zarr``), if any."""
    parts = str(path).rstrip("/").replace("\\", "/").split("/")
    name, parent = parts[-1], parts[-2] if len(parts) > 1 else ""
    if parent.endswith(".versions"):
        stem = parent.removesuffix(".versions")
    else:
        stem = name.removesuffix(".partial").removesuffix(".zarr")
    return stem if _KEY.match(stem) else None


def provenance_problems(attrs: dict[str, Any], path: str | Path) -> list[str]:
    """Each way the key, the folder name and the recorded provenance disagree, as one phrase."""
    inputs = attrs.get("key_inputs")
    if not isinstance(inputs, dict):
        return ["key_inputs are missing, so the key cannot be checked"]
    problems = []
    key, recomputed = str(attrs.get("key")), key_of(inputs)
    if key != recomputed:
        problems.append(f"key {key} is not the hash of its key_inputs (they hash to {recomputed})")
    named = named_key(path)
    if named is not None and named != key:
        problems.append(f"key {key} differs from the key {named} its folder is named by")
    backbone = attrs.get("backbone") or {}
    weights = inputs.get("weights_hash")
    if "weights_hash" in backbone and "weights_hash" in inputs and backbone["weights_hash"] != weights:
        problems.append(f"backbone.weights_hash {backbone['weights_hash']} differs from key_inputs' {weights}")
    if "random_init" in backbone and "weights_hash" in inputs and bool(backbone["random_init"]) != (weights == RANDOM_INIT):
        problems.append(f"backbone.random_init is {backbone['random_init']} but key_inputs' weights_hash is {weights}")
    for field in ("preprocessing", "dataset"):
        if field in attrs and field in inputs and attrs[field] != inputs[field]:
            problems.append(f"{field} {canonical_json(attrs[field])} differs from key_inputs' "
                            f"{canonical_json(inputs[field])}")
    config, keyed = backbone.get("config"), inputs.get("backbone")
    if isinstance(config, dict) and isinstance(keyed, dict):
        differing = sorted(name for name, value in config.items() if keyed.get(name) != value)
        if differing:
            problems.append(f"backbone.config differs from key_inputs' backbone in {', '.join(differing)}")
    return problems

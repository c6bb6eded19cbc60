"""Whether a published store already holds exactly an extraction, found without loading the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def request_fields(
    name: str, img_size: int, n_last: int, patch_tokens: bool, overrides: dict[str, Any], random_init: bool, seed: int
) -> dict[str, Any]:
    """The backbone request as the loader records it in the store's backbone config."""
    normalised = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(overrides.items())}
    return {
        "name": name,
        "img_size": int(img_size),
        "n_last": int(n_last),
        "patch_tokens": bool(patch_tokens),
        "model_overrides": normalised,
        "random_init": bool(random_init),
        "seed": int(seed) if random_init else None,
    }


def weights_hash_of(weights: Path | None, random_init: bool) -> str | None:
    """``random-init``, the sha256 of a weights file, or None when only loading would tell."""
    if random_init:
        return "random-init"
    if weights is None or not Path(weights).is_file():
        return None
    from featx.backbones.weights import sha256_file

    return sha256_file(weights)


def up_to_date_store(
    cache: Path,
    dataset: str,
    request: dict[str, Any],
    weights_hash: str | None,
    preprocessing: dict[str, Any],
    index: Any,
) -> Path | None:
    """The published store that already holds exactly this extraction, found without loading the model.

    ``request`` holds the backbone request fields that enter the store's backbone config
    (name, img_size, n_last, patch_tokens, model_overrides, random_init, seed);
    ``weights_hash`` is ``"random-init"`` or the sha256 of the weights file (None: unknown,
    no shortcut). A store written by the same featx version from the same request has the
    same key, so comparing the recorded inputs stands in for recomputing it.
    """
    from featx import __version__
    from featx.cache.key import SCHEMA_VERSION
    from featx.cache.store import PUBLISHED_SUFFIX, FeatureStore, StoreError, store_dir
    from featx.datasets.stamps import row_stamps

    if weights_hash is None:
        return None
    folder = store_dir(cache, dataset, request["name"])
    if not folder.is_dir():
        return None
    stamps = None
    for path in sorted(folder.glob(f"*{PUBLISHED_SUFFIX}")):
        try:
            store = FeatureStore.open(path)
        except StoreError:  # not a readable published store: the extraction itself reports or rebuilds it
            continue
        attrs = store.attrs
        inputs = attrs.get("key_inputs", {}) or {}
        config = inputs.get("backbone", {}) or {}
        same = (
            attrs.get("featx_version") == __version__
            and inputs.get("schema") == SCHEMA_VERSION
            and inputs.get("dataset") == dataset
            and inputs.get("weights_hash") == weights_hash
            and inputs.get("preprocessing") == preprocessing
            and all(config.get(field) == value for field, value in request.items())
        )
        if not same:
            continue
        stamps = row_stamps(index.table) if stamps is None else stamps
        if store.matches_index(index, stamps):
            return path
    return None

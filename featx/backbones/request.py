"""How to load a backbone, as a small picklable value (a model is never shipped between processes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from featx.backbones.base import LoadedBackbone
from featx.backbones.loader import load_backbone


@dataclass(frozen=True)
class BackboneRequest:
    """The arguments of ``load_backbone``, picklable and hashable."""

    name: str
    img_size: int
    weights: str | None = None
    random_init: bool = False
    n_last: int = 4
    patch_tokens: bool = False
    model_overrides: tuple[tuple[str, Any], ...] = ()
    seed: int = 0

    def load(self) -> LoadedBackbone:
        """Load it (cached per process: a Dask worker loads each model once)."""
        return _load_cached(self)


@lru_cache(maxsize=2)
def _load_cached(request: BackboneRequest) -> LoadedBackbone:
    kwargs = asdict(request)
    kwargs["model_overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in request.model_overrides} or None
    return load_backbone(kwargs.pop("name"), **kwargs)

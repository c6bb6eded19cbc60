"""Which store of a (dataset, backbone) pair a probe reads: picked by key fields, never guessed.

A cache may hold several stores of one pair (two sizes, pretrained and random
weights, with and without patch tokens): they are different experiments. A pick
that leaves more than one candidate is refused with the candidates listed, so a
result always says which experiment it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featx.cache.store import PUBLISHED_SUFFIX, FeatureStore, StoreError, store_dir


@dataclass(frozen=True)
class StoreFacts:
    """What makes a store its own experiment, in the words a user picks it by."""

    key: str
    img_size: int | None
    weights: str  # "random-init", or the weights file's name and hash prefix
    layers: tuple[str, ...]
    patch_tokens: bool
    preprocessing: str

    @classmethod
    def of(cls, attrs: dict[str, Any]) -> StoreFacts:
        """The facts of a store from its featx attributes."""
        backbone = attrs.get("backbone", {}) or {}
        return cls(
            key=str(attrs.get("key")),
            img_size=backbone.get("img_size"),
            weights=weights_label(backbone),
            layers=tuple(attrs.get("layers", []) or []),
            patch_tokens=bool(attrs.get("patch_grid")),
            preprocessing=preprocessing_label(attrs.get("preprocessing")),
        )

    def columns(self) -> dict[str, Any]:
        """The facts as `featx cache ls` columns."""
        layers = f"{self.layers[0]}..{self.layers[-1]}" if len(self.layers) > 1 else ",".join(self.layers)
        return {"weights": self.weights, "layers": layers, "patch_tokens": self.patch_tokens, "preprocessing": self.preprocessing}

    def brief(self) -> str:
        """``key 0123abcd, size 224, weights random-init``: the line prefix of every probe output."""
        return f"key {self.key}, size {self.img_size}, weights {self.weights}"

    def describe(self) -> str:
        """Every distinguishing field on one line (for candidate lists)."""
        columns = self.columns()
        return (
            f"{self.brief()}, layers {columns['layers']}, patch tokens {'yes' if self.patch_tokens else 'no'}, "
            f"preprocessing {self.preprocessing}"
        )


def weights_label(backbone: dict[str, Any]) -> str:
    """``random-init``, or ``NAME@HASH8`` for a weights file, or ``sha256:HASH8``."""
    if backbone.get("random_init"):
        return "random-init"
    digest = str(backbone.get("weights_hash") or "unknown")
    source = backbone.get("weights_source")
    short = digest[:8]
    return f"{Path(str(source)).name}@{short}" if source and source != "random-init" else f"sha256:{short}"


def preprocessing_label(preprocessing: dict[str, Any] | None) -> str:
    """``window[-1024,600]``, ``percentile[5,95]`` or ``minmax`` (plus a non-default resample)."""
    if not preprocessing:
        return "unknown"
    mode = preprocessing.get("intensity", "?")
    if mode == "window":
        low, high = preprocessing.get("window", ("?", "?"))
        label = f"window[{low:g},{high:g}]" if isinstance(low, (int, float)) else "window"
    elif mode == "percentile":
        low, high = preprocessing.get("percentiles", ("?", "?"))
        label = f"percentile[{low:g},{high:g}]" if isinstance(low, (int, float)) else "percentile"
    else:
        label = str(mode)
    resample = preprocessing.get("resample")
    return label if resample in (None, "bilinear") else f"{label},{resample}"


@dataclass(frozen=True)
class StorePick:
    """What the user asked for beyond (dataset, backbone); None = any."""

    key: str | None = None
    size: int | None = None
    weights: str | None = None  # "random", "pretrained", or a prefix of the weights hash
    patch_tokens: bool | None = None

    def matches(self, facts: StoreFacts, weights_hash: str) -> bool:
        """Whether a store with these facts fits every field given."""
        if self.key is not None and not facts.key.startswith(self.key):
            return False
        if self.size is not None and facts.img_size != self.size:
            return False
        if self.patch_tokens is not None and facts.patch_tokens != self.patch_tokens:
            return False
        if self.weights is not None:
            random = facts.weights == "random-init"
            wanted = self.weights.lower()
            if wanted == "random":
                return random
            if wanted == "pretrained":
                return not random
            return not random and weights_hash.startswith(wanted)
        return True

    def describe(self) -> str:
        """The options given, as typed (``--size 112 --weights random``)."""
        parts = [f"--{name} {value}" for name, value in (("key", self.key), ("size", self.size), ("weights", self.weights)) if value is not None]
        if self.patch_tokens is not None:
            parts.append("--patch-tokens" if self.patch_tokens else "--no-patch-tokens")
        return " ".join(parts) if parts else "no key fields"


class AmbiguousStore(StoreError):
    """Several stores fit a pick: refused, with the candidates listed."""


PICK_HINT = "pick one with --size, --weights random|pretrained|HASH, --patch-tokens/--no-patch-tokens or --key"


def select_store(cache_root: str | Path, dataset: str, backbone: str, pick: StorePick | None = None) -> Path:
    """The one published store of (dataset, backbone) under ``cache_root`` that fits ``pick``.

    Raises :class:`StoreError` naming the candidates when none or several fit.
    """
    pick = pick or StorePick()
    folder = store_dir(cache_root, dataset, backbone)
    paths = sorted(folder.glob(f"*{PUBLISHED_SUFFIX}")) if folder.is_dir() else []
    if not paths:
        root = Path(cache_root).expanduser().resolve()
        present = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in root.glob(f"*/*/*{PUBLISHED_SUFFIX}"))
        raise StoreError(
            f"no feature store for dataset {dataset!r} and backbone {backbone!r} under {root} "
            f"(stores there: {', '.join(dict.fromkeys(present)) or 'none'}); run `featx extract` first"
        )
    candidates = []
    for path in paths:
        attrs = FeatureStore.open(path).attrs
        facts = StoreFacts.of(attrs)
        weights_hash = str((attrs.get("backbone", {}) or {}).get("weights_hash") or "")
        candidates.append((path, facts, pick.matches(facts, weights_hash)))
    fitting = [(path, facts) for path, facts, ok in candidates if ok]
    if len(fitting) == 1:
        return fitting[0][0]
    if not fitting:
        listed = "".join(f"\n  {facts.describe()}" for _, facts, _ in candidates)
        raise StoreError(f"{dataset} x {backbone}: no store fits {pick.describe()}; the stores there are:{listed}")
    listed = "".join(f"\n  {facts.describe()}" for _, facts in fitting)
    raise AmbiguousStore(
        f"{dataset} x {backbone}: {len(fitting)} stores fit {pick.describe()}, so featx will not guess; "
        f"{PICK_HINT}:{listed}"
    )

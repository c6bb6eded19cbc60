"""Typed registry of dataset adapters: a name -> a function that indexes a download."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featx.datasets.index import DatasetError, SampleIndex

Adapter = Callable[..., SampleIndex]


@dataclass(frozen=True)
class AdapterInfo:
    """A registered adapter: its name, what it reads and the function that indexes it."""

    name: str
    description: str
    build: Adapter


_ADAPTERS: dict[str, AdapterInfo] = {}


def register_dataset(name: str, description: str) -> Callable[[Adapter], Adapter]:
    """Register ``fn(root: Path, **options) -> SampleIndex`` under ``name``."""

    def decorate(fn: Adapter) -> Adapter:
        if name in _ADAPTERS:
            raise ValueError(f"dataset adapter {name!r} is registered twice")
        _ADAPTERS[name] = AdapterInfo(name=name, description=description, build=fn)
        return fn

    return decorate


def list_datasets() -> list[AdapterInfo]:
    """All registered adapters, sorted by name."""
    _load_builtin_adapters()
    return [_ADAPTERS[name] for name in sorted(_ADAPTERS)]


def build_index(name: str, root: str | Path, /, **options: Any) -> SampleIndex:
    """Index the dataset ``name`` found at ``root`` (a folder, or a file for ``csv``).

    Every adapter also takes ``split_file=PATH``: a CSV of ``id, split`` that replaces
    the adapter's split (see :func:`featx.datasets.splits.apply_split_file`).
    """
    _load_builtin_adapters()
    if name not in _ADAPTERS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(_ADAPTERS))}")
    root = Path(root).expanduser().resolve()
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    split_file = options.pop("split_file", None)
    known = adapter_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DatasetError(f"dataset {name!r} has no option {unknown[0]!r}; its options: {sorted(known)}")
    index = _ADAPTERS[name].build(root, **options)
    if split_file:
        from featx.datasets.splits import apply_split_file

        index = apply_split_file(index, Path(split_file).expanduser())
    return index


def get_adapter(name: str) -> AdapterInfo:
    """The registered adapter ``name``."""
    _load_builtin_adapters()
    if name not in _ADAPTERS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(_ADAPTERS))}")
    return _ADAPTERS[name]


def adapter_options(name: str) -> dict[str, Any]:
    """The keyword options an adapter takes, with their defaults (``split_file`` is common to all)."""
    import inspect

    signature = inspect.signature(get_adapter(name).build)
    options = {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    options["split_file"] = None
    return options


def _load_builtin_adapters() -> None:
    """Import the adapter modules so that their decorators run."""
    from featx.datasets import adapters  # noqa: F401


def index_from_options(
    dataset: str, root: str | Path, options: dict[str, Any], name: str | None = None, modality: str | None = None
) -> SampleIndex:
    """The sample index a job asks for: adapter options as given, and for ``csv`` its name and modality.

    The CSV adapter's dataset name defaults to the CSV's stem and its modality to ``other``.
    """
    options = {key.replace("-", "_"): value for key, value in options.items()}
    if dataset == "csv":
        options.setdefault("name", name)
        options.setdefault("modality", modality or "other")
    return build_index(dataset, root, **{k: v for k, v in options.items() if v is not None})

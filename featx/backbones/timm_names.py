"""timm's model names, read from its source files so that a name is checked without importing torch.

timm registers every architecture with ``@register_model`` on a function of that name, and old
names with ``register_model_deprecations(__name__, {old: new})``, in ``timm/models/*.py``; reading
those files takes milliseconds where ``import timm`` takes seconds. tests/backbones/test_timm_names.py
holds the list equal to timm's own registry.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

__all__ = ["is_timm_model", "timm_model_names"]

_REGISTERED = re.compile(r"^@register_model\s*\ndef\s+(\w+)\s*\(", re.MULTILINE)
_DEPRECATIONS = re.compile(r"register_model_deprecations\(\s*__name__\s*,\s*\{(.*?)\}\s*\)", re.DOTALL)
_KEY = re.compile(r"""['"](\w+)['"]\s*:""")


@functools.cache
def timm_model_names() -> frozenset[str]:
    """Every architecture name timm registers (deprecated aliases included); empty without timm."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    names: set[str] = set()
    for folder in spec.submodule_search_locations:
        for path in sorted((Path(folder) / "models").glob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            names.update(_REGISTERED.findall(text))
            for block in _DEPRECATIONS.findall(text):
                names.update(_KEY.findall(block))
    return frozenset(names)


def is_timm_model(name: str) -> bool:
    """Whether timm knows ``name``'s architecture (``arch`` or ``arch.tag``), as ``timm.is_model`` says."""
    return name.split(".", 1)[0] in timm_model_names()

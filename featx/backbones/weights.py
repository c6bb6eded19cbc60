"""Local weights: find them offline, read them, hash them, check them strictly.

Nothing here touches the network. Published weights are looked up, in this order, in

1. featx's own folder ``$FEATX_WEIGHTS_DIR`` (default ``$XDG_CACHE_HOME/featx/weights``,
   i.e. ``~/.cache/featx/weights``): a file named ``<backbone>.safetensors`` / ``.pth`` / ``.bin``;
2. the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``), read with ``huggingface_hub.try_to_load_from_cache``, which
   never goes online, so a missing file fails at once (``HF_HUB_OFFLINE=1`` semantics);
3. the torch hub checkpoint folder (``$TORCH_HOME/hub/checkpoints``), where torch.hub,
   torchvision and timm's URL downloads put files;
4. open_clip's legacy download folder ``~/.cache/clip``.

A checkpoint is checked against the model's expected tensor names and shapes *before* any
tensor is copied into a model, so a wrong checkpoint never leaves a partially loaded model.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featx.backbones.locations import (
    WeightCandidate,
    featx_weights_dir,
    hf_cache_dir,
    torch_hub_checkpoints_dir,
)

__all__ = [
    "WeightCandidate",
    "WeightsError",
    "check_state_dict",
    "featx_weights_dir",
    "find_pretrained",
    "hf_cache_dir",
    "read_state_dict",
    "save_state_dict",
    "sha256_file",
    "torch_hub_checkpoints_dir",
]


class WeightsError(RuntimeError):
    """Weights that are absent, unreadable or do not fit the architecture asked for."""


def find_pretrained(name: str, candidates: Iterable[WeightCandidate], hint: str = "") -> Path:
    """The first local file among ``candidates``; else a :class:`WeightsError` listing every place."""
    candidates = list(candidates)
    for candidate in candidates:
        path = candidate.resolve()
        if path is not None:
            return path
    looked = "\n".join(f"  - {c.describe()}" for c in candidates) or "  (no known location)"
    raise WeightsError(
        f"no local pretrained weights for backbone {name!r}; featx looked (offline) in:\n{looked}\n"
        f"Provide them with --weights FILE (.safetensors, .pth or .bin; Python: load_backbone(..., weights=FILE)), "
        f"or copy the file to {featx_weights_dir() / (name + '.safetensors')} (or .pth/.bin), or fill the "
        f"Hugging Face cache on a machine with internet and copy it here{hint}. "
        f"featx never substitutes random weights; for a smoke test only, ask for them with --random-init."
    )


# --------------------------------------------------------------------------------------------
# reading and hashing
# --------------------------------------------------------------------------------------------
_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of the file's content (memoised per path, size and mtime within a process)."""
    path = Path(path).resolve()
    stat = path.stat()
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo_key in _HASH_MEMO:
        return _HASH_MEMO[memo_key]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    _HASH_MEMO[memo_key] = digest.hexdigest()
    return _HASH_MEMO[memo_key]


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def unwrap_checkpoint(obj: Any, path: Path, prefer: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """A checkpoint container -> its flat ``{name: tensor}`` state dict.

    Looks under the keys in ``prefer`` first (e.g. MSN's ``target_encoder``), then the usual
    ``state_dict`` / ``model`` / ``module`` wrappers. Non-tensor entries at the top level
    (epoch counters, optimizer state) are never taken for weights.
    """
    if _is_tensor_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in (*prefer, "state_dict", "model", "module", "model_state_dict", "model_ema"):
            if key in obj and _is_tensor_dict(obj[key]):
                return dict(obj[key])
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        nested = [k for k, v in obj.items() if _is_tensor_dict(v)]
        if tensors and not nested:
            return tensors
        raise WeightsError(
            f"{path}: a checkpoint container with entries {sorted(map(str, obj))[:12]} and no state dict "
            f"featx knows how to pick (looked under {[*prefer, 'state_dict', 'model', 'module']}); "
            f"save the model's state dict alone (safetensors recommended) and pass that file"
        )
    raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")


def read_state_dict(path: str | Path, prefer: Iterable[str] = ()) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` / ``.pth`` / ``.bin`` / TorchScript file onto the CPU.

    Pickled files are read with ``torch.load(weights_only=True)``; a file that needs arbitrary
    code to unpickle is refused unless ``FEATX_ALLOW_PICKLE=1`` is set. A truncated or corrupt
    file raises :class:`WeightsError` naming it.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist")
    if not path.is_file():
        raise WeightsError(f"weights path {path} is not a file")
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"weights file {path} is empty (0 bytes): an interrupted download?")
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(
                f"weights file {path} ({size} bytes) is not a readable safetensors file - truncated or corrupt? ({exc})"
            ) from None
    obj = _torch_load(path, size)
    return unwrap_checkpoint(obj, path, prefer)


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte little-endian header length then ``{``."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30)


def _torch_load(path: Path, size: int) -> Any:
    allow_pickle = os.environ.get("FEATX_ALLOW_PICKLE", "") not in ("", "0")
    try:
        return torch.load(str(path), map_location="cpu", weights_only=not allow_pickle, mmap=False)
    except pickle.UnpicklingError as exc:
        if _is_torchscript(path):
            return _jit_state_dict(path, size)
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise WeightsError(
                f"weights file {path} needs arbitrary code to unpickle ({str(exc).splitlines()[0]}). "
                f"Convert it to a plain state dict (safetensors), or if you trust it set FEATX_ALLOW_PICKLE=1"
            ) from None
        raise WeightsError(f"weights file {path} ({size} bytes) cannot be unpickled - truncated or corrupt? ({exc})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        if _is_torchscript(path):
            return _jit_state_dict(path, size)
        raise WeightsError(
            f"weights file {path} ({size} bytes) cannot be read - truncated or corrupt? ({str(exc).splitlines()[0]})"
        ) from None


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _jit_state_dict(path: Path, size: int) -> dict[str, torch.Tensor]:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure here means the archive is unusable
        raise WeightsError(f"weights file {path} ({size} bytes): unreadable TorchScript archive ({exc})") from None
    return {k: v for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}


def save_state_dict(state_dict: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Write a state dict as ``.safetensors`` (by suffix) or a torch pickle (anything else)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        # safetensors refuses shared storage; clone so tied/viewed tensors save fine
        save_file({k: v.clone() for k, v in tensors.items()}, str(path))
    else:
        torch.save(tensors, str(path))
    return path


def check_sidecar_mean_std(
    folder: Path, filename: str, keys: tuple[tuple[str, ...], tuple[str, ...]],
    mean: tuple[float, ...], std: tuple[float, ...], name: str, tol: float = 1e-3,
) -> None:
    """If ``folder/filename`` (JSON) exists, its mean/std (found at the key paths ``keys``) must
    match ``mean`` / ``std``; else :class:`WeightsError` naming the file and both values."""
    path = Path(folder) / filename
    if not path.is_file():
        return
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} (next to the weights of {name!r}) is not readable JSON: {exc}") from None
    found = []
    for key_path in keys:
        value: Any = config
        for key in key_path:
            value = value.get(key) if isinstance(value, dict) else None
        found.append(value)
    if any(v is None for v in found):
        return  # the file does not say; nothing to contradict
    said_mean, said_std = ([float(x) for x in v] if isinstance(v, list) else [float(v)] * 3 for v in found)
    if any(abs(a - b) > tol for a, b in zip([*said_mean, *said_std], [*mean, *std])):
        raise WeightsError(
            f"{path} says mean {said_mean} / std {said_std}, but featx normalises {name!r} with mean "
            f"{list(mean)} / std {list(std)}; these weights are not the ones featx describes (or featx's "
            f"constants are wrong - please report it). No model was loaded."
        )


def strip_prefixes(state_dict: dict[str, torch.Tensor], prefixes: Iterable[str]) -> dict[str, torch.Tensor]:
    """Remove a wrapper prefix (``module.``, ``trunk.`` ...) when *every* key carries it."""
    for prefix in prefixes:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


# --------------------------------------------------------------------------------------------
# strict check
# --------------------------------------------------------------------------------------------
def expected_shapes(trunk: nn.Module) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor ``trunk.load_state_dict`` expects (works on meta modules)."""
    return {k: tuple(v.shape) for k, v in trunk.state_dict().items()}


def check_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int, ...]],
    source: str | Path,
    what: str,
) -> None:
    """Raise :class:`WeightsError` unless names and shapes match exactly.

    The message names the file, the backbone and the *first* mismatching tensor in the model's
    own order (a missing or wrongly shaped one), then a count of all problems.
    """
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [k for k in expected if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])]
    if not (missing or unexpected or wrong):
        return
    first = next((k for k in expected if k in missing or k in wrong), None)
    if first is None:
        first = unexpected[0]
        detail = f"tensor {first!r} {tuple(state_dict[first].shape)} in the file has no place in the model"
    elif first in missing:
        detail = f"tensor {first!r} {tuple(expected[first])} expected by the model is missing from the file"
    else:
        detail = (f"tensor {first!r} has shape {tuple(state_dict[first].shape)} in the file, "
                  f"the model expects {tuple(expected[first])}")
    raise WeightsError(
        f"weights file {source} does not fit {what}: first mismatching {detail}. "
        f"({len(wrong)} shape mismatches, {len(missing)} missing, {len(unexpected)} unexpected of "
        f"{len(expected)} model tensors; a checkpoint of another architecture or size? "
        f"No model was loaded.)"
    )

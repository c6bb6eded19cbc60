"""Where published weights may sit on this machine: featx's folder, the HF hub cache, torch hub, open_clip.

Plain paths and names, importable without torch, so ``featx backbones`` can say which weights are
here without loading anything. Reading and checking the files is :mod:`featx.backbones.weights`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WeightCandidate",
    "featx_candidates",
    "featx_weights_dir",
    "hf_cache_dir",
    "hf_candidates",
    "open_clip_cache_dir",
    "timm_candidates",
    "torch_hub_checkpoints_dir",
]

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".bin", ".pt", ".pth.tar", ".ckpt")


# --------------------------------------------------------------------------------------------
# where to look
# --------------------------------------------------------------------------------------------
def _xdg_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()


def featx_weights_dir() -> Path:
    """featx's own offline weights folder (``$FEATX_WEIGHTS_DIR`` or ``~/.cache/featx/weights``)."""
    env = os.environ.get("FEATX_WEIGHTS_DIR")
    return Path(env).expanduser() if env else _xdg_cache() / "featx" / "weights"


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder, resolved from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else _xdg_cache() / "huggingface") / "hub"


def torch_hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (where torch.hub / torchvision / timm URL downloads go)."""
    home = os.environ.get("TORCH_HOME")
    base = Path(home).expanduser() if home else _xdg_cache() / "torch"
    return base / "hub" / "checkpoints"


def open_clip_cache_dir() -> Path:
    """open_clip's legacy URL download folder (OpenAI ``.pt`` archives)."""
    return _xdg_cache() / "clip"


@dataclass(frozen=True)
class WeightCandidate:
    """One place published weights may be found locally.

    ``kind`` is ``"featx"`` (``filename`` inside :func:`featx_weights_dir`), ``"hf"``
    (``repo_id`` + ``filename`` in the HF hub cache), ``"torch_hub"`` (``filename`` in
    :func:`torch_hub_checkpoints_dir`) or ``"open_clip"`` (``filename`` in ``~/.cache/clip``).
    """

    kind: str
    filename: str
    repo_id: str | None = None

    def describe(self) -> str:
        if self.kind == "hf":
            return f"HF cache {hf_cache_dir()} : {self.repo_id} / {self.filename}"
        return str(self._folder() / self.filename)

    def _folder(self) -> Path:
        return {
            "featx": featx_weights_dir,
            "torch_hub": torch_hub_checkpoints_dir,
            "open_clip": open_clip_cache_dir,
        }[self.kind]()

    def resolve(self) -> Path | None:
        """The local file, or None; never touches the network."""
        if self.kind == "hf":
            try:
                from huggingface_hub import try_to_load_from_cache
            except ImportError:  # pragma: no cover - huggingface_hub is a dependency of timm
                return None
            found = try_to_load_from_cache(self.repo_id, self.filename, cache_dir=str(hf_cache_dir()))
            return Path(found) if isinstance(found, str) and Path(found).is_file() else None
        path = self._folder() / self.filename
        return path if path.is_file() else None


def featx_candidates(name: str) -> list[WeightCandidate]:
    """``<featx weights dir>/<name><suffix>`` for every supported suffix."""
    return [WeightCandidate("featx", name + suffix) for suffix in WEIGHT_SUFFIXES]


#: the files a ``timm/<arch>.<tag>`` Hugging Face repository holds the weights in
TIMM_HF_FILES = ("model.safetensors", "pytorch_model.bin")


def timm_candidates(name: str, arch: str, tag: str | None, hf_files: tuple[str, ...] = TIMM_HF_FILES,
                    torch_hub_files: tuple[str, ...] = ()) -> tuple[WeightCandidate, ...]:
    """featx's folder, then HF ``timm/<arch>.<tag>`` (when tagged), then the torch hub files."""
    out = featx_candidates(name)
    if tag:
        out += [WeightCandidate("hf", f, f"timm/{arch}.{tag}") for f in hf_files]
    return tuple(out + [WeightCandidate("torch_hub", f) for f in torch_hub_files])


def hf_candidates(name: str, repo_id: str, files: tuple[str, ...]) -> tuple[WeightCandidate, ...]:
    """featx's folder, then ``files`` of the Hugging Face repository ``repo_id``."""
    return tuple(featx_candidates(name) + [WeightCandidate("hf", f, repo_id) for f in files])

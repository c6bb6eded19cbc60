"""Pixels in native units -> the uint8 ``(3, S, S)`` image a backbone sees (before mean/std).

Intensity first (CT window, MRI percentile clip or per-image min-max, then [0, 1]),
then resize, then grey replicated to 3 channels. The backbone's own mean/std is
applied on the device, batch by batch. The whole config goes into the cache key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

Intensity = Literal["minmax", "window", "percentile"]

# PROTOCOL.md: CT windowed (AMOS HU clamp), MRI 5th-95th percentile clip, then min-max.
MODALITY_DEFAULTS: dict[str, dict[str, Any]] = {
    "ct": {"intensity": "window", "window": (-1024.0, 600.0)},
    "mri": {"intensity": "percentile", "percentiles": (5.0, 95.0)},
    "xray": {"intensity": "minmax"},
    "other": {"intensity": "minmax"},
}


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that turns decoded pixels into the backbone's input."""

    size: int
    intensity: Intensity = "minmax"
    window: tuple[float, float] = (-1024.0, 600.0)
    percentiles: tuple[float, float] = (5.0, 95.0)
    resample: Literal["bilinear", "bicubic"] = "bilinear"

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"image size {self.size} is too small")
        if self.intensity not in ("minmax", "window", "percentile"):
            raise ValueError(f"unknown intensity mode {self.intensity!r}")
        if self.window[0] >= self.window[1]:
            raise ValueError(f"window {self.window}: low must be below high")
        if not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise ValueError(f"percentiles {self.percentiles} must satisfy 0 <= low < high <= 100")

    @classmethod
    def for_modality(cls, modality: str, size: int, **overrides: Any) -> PreprocessConfig:
        """The protocol's default for a modality, with any field overridden."""
        base = dict(MODALITY_DEFAULTS.get(modality, MODALITY_DEFAULTS["other"]))
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(size=size, **base)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as it enters the cache key."""
        data = asdict(self)
        data["window"] = list(self.window)
        data["percentiles"] = list(self.percentiles)
        return data


def scale_intensity(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Native units -> float32 in [0, 1] by the configured rule."""
    image = image.astype(np.float32, copy=False)
    if config.intensity == "window":
        low, high = config.window
    elif config.intensity == "percentile":
        low, high = (float(v) for v in np.percentile(image, config.percentiles))
    else:
        low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros_like(image)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def _resize_plane(plane: np.ndarray, size: int, resample: int) -> np.ndarray:
    if plane.shape == (size, size):
        return plane
    return np.asarray(Image.fromarray(plane, mode="F").resize((size, size), resample=resample))


def to_unit_planes(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Decoded pixels ``(H, W)`` or ``(H, W, 3)`` -> float32 ``(C, S, S)`` in [0, 1]; C = 1 (grey) or 3."""
    scaled = scale_intensity(image, config)
    resample = Image.Resampling.BICUBIC if config.resample == "bicubic" else Image.Resampling.BILINEAR
    if scaled.ndim == 2:
        planes = [_resize_plane(scaled, config.size, resample)]
    else:
        planes = [_resize_plane(np.ascontiguousarray(scaled[..., c]), config.size, resample) for c in range(3)]
    return np.clip(np.stack(planes), 0.0, 1.0)


def quantise(planes: np.ndarray, bits: int = 8) -> np.ndarray:
    """[0, 1] floats -> uint8 (``bits=8``) or uint16 (``bits=16``) counts, rounded to nearest."""
    top, dtype = (255.0, np.uint8) if bits == 8 else (65535.0, np.uint16)
    return np.rint(planes * top).astype(dtype)


def to_model_input(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Decoded pixels ``(H, W)`` or ``(H, W, 3)`` -> uint8 ``(3, S, S)`` (grey replicated)."""
    planes = quantise(to_unit_planes(image, config))
    return np.repeat(planes, 3, axis=0) if planes.shape[0] == 1 else planes


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A class-id mask resized with nearest neighbour (ids are never blended)."""
    if mask.shape == (size, size):
        return mask.astype(np.uint8)
    return np.array(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST))

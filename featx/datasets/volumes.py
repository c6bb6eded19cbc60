"""Volume preprocessing for the 3D encoders: orientation, spacing, intensity, fixed shape, tiles.

A NIfTI volume goes, in this order:

1. **orientation**: to RAS, nibabel's closest canonical orientation (axes flipped / permuted,
   never interpolated);
2. **spacing**: resampled to ``spacing`` mm per axis (trilinear for the image, nearest for a mask;
   ``None`` keeps the file's spacing);
3. **intensity**: CT - one channel per HU window ``(low, high)``, clipped and scaled to [0, 1]
   (several windows = a multi-window input, one channel each); MRI (no windows) - clipped to the
   volume's own ``mri_clip`` percentiles and scaled to [0, 1];
4. **shape**: centre-cropped / zero-padded to ``shape`` (every row of a store the same size);
5. **tiles**: ``tile``-edge cubes with ``overlap``, placed on the encoder's stride grid so that
   every tile's feature maps line up with the volume's (:func:`tile_starts`, :func:`merge_tiles`).

:meth:`VolumePrep.key` holds all of it and goes into the cache key: a store extracted at another
spacing or window is another store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featx.datasets.index import DatasetError

PREP_VERSION = 1


@dataclass(frozen=True)
class VolumePrep:
    """Everything that turns a volume file into an encoder's input tiles."""

    tile: int = 96
    shape: tuple[int, int, int] | None = None  # the fixed volume shape after crop/pad; None: one tile
    spacing: tuple[float, float, float] | None = (1.5, 1.5, 1.5)
    windows: tuple[tuple[float, float], ...] = ((-175.0, 250.0),)  # HU (low, high); () for MRI
    mri_clip: tuple[float, float] = (0.5, 99.5)  # percentiles, used when ``windows`` is empty
    overlap: float = 0.25
    orientation: str = "RAS"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in (self.shape or (self.tile,) * 3)))
        object.__setattr__(self, "windows", tuple((float(lo), float(hi)) for lo, hi in self.windows))
        if self.spacing is not None:
            object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        if self.orientation != "RAS":
            raise DatasetError(f"orientation {self.orientation!r}: featx reorients volumes to RAS only")
        if not 0.0 <= self.overlap < 1.0:
            raise DatasetError(f"overlap {self.overlap}: expected a fraction in [0, 1)")
        if len(self.shape) != 3 or min(self.shape) < self.tile:
            raise DatasetError(f"volume shape {list(self.shape)}: expected 3 sizes, each at least the tile {self.tile}")
        if any(hi <= lo for lo, hi in self.windows):
            raise DatasetError(f"HU windows {list(self.windows)}: each needs low < high")
        if not 0.0 <= self.mri_clip[0] < self.mri_clip[1] <= 100.0:
            raise DatasetError(f"mri_clip {list(self.mri_clip)}: expected percentiles 0 <= low < high <= 100")

    @property
    def channels(self) -> int:
        """Input channels: one per HU window (MRI: one)."""
        return max(1, len(self.windows))

    def key(self) -> dict[str, Any]:
        """The JSON-able preprocessing config (part of the cache key)."""
        out = asdict(self)
        out.update(featx_volume_prep=PREP_VERSION, level="volume", shape=list(self.shape),
                   windows=[list(w) for w in self.windows], mri_clip=list(self.mri_clip),
                   spacing=list(self.spacing) if self.spacing else None,
                   intensity="hu_windows" if self.windows else "mri_percentile_clip")
        return out


def read_canonical(path: str | Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A NIfTI volume in RAS orientation (float32) and its voxel spacing in mm."""
    import nibabel as nib

    try:
        image = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any read failure: the file is not a usable volume
        raise DatasetError(f"{path}: not a readable NIfTI volume ({exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DatasetError(f"{path}: a volume needs 3 dimensions, the file has shape {list(data.shape)}")
    return data, tuple(float(z) for z in image.header.get_zooms()[:3])  # type: ignore[return-value]


def resample(volume: np.ndarray, spacing: tuple[float, ...], target: tuple[float, ...] | None,
             nearest: bool = False) -> np.ndarray:
    """``volume`` at ``target`` mm per voxel (trilinear, or nearest for label masks)."""
    if target is None or np.allclose(spacing, target):
        return volume
    from scipy.ndimage import zoom

    factors = [s / t for s, t in zip(spacing, target)]
    return zoom(volume, factors, order=0 if nearest else 1, mode="nearest", grid_mode=False)


def intensity(volume: np.ndarray, prep: VolumePrep) -> np.ndarray:
    """``(C, D, H, W)`` float32 in [0, 1]: one channel per HU window, or the MRI percentile clip."""
    if prep.windows:
        return np.stack([(np.clip(volume, lo, hi) - lo) / (hi - lo) for lo, hi in prep.windows]).astype(np.float32)
    lo, hi = np.percentile(volume, prep.mri_clip)
    scaled = (np.clip(volume, lo, hi) - lo) / (hi - lo) if hi > lo else np.zeros_like(volume)
    return scaled[None].astype(np.float32)


def crop_pad(volume: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Centre-crop / zero-pad the last three axes of ``volume`` to ``shape``."""
    out = np.zeros(volume.shape[:-3] + tuple(shape), dtype=volume.dtype)
    src, dst = [], []
    for have, want in zip(volume.shape[-3:], shape):
        start = (have - want) // 2
        if start >= 0:
            src.append(slice(start, start + want))
            dst.append(slice(0, want))
        else:
            src.append(slice(0, have))
            dst.append(slice(-start, -start + have))
    out[(..., *dst)] = volume[(..., *src)]
    return out


def prepare_volume(path: str | Path, prep: VolumePrep, mask_path: str | Path | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``(C, *shape)`` encoder input of one volume file and, if given, its ``shape`` uint8 mask."""
    volume, spacing = read_canonical(path)
    image = crop_pad(intensity(resample(volume, spacing, prep.spacing), prep), prep.shape)
    if not mask_path:
        return image, None
    mask, mask_spacing = read_canonical(mask_path)
    if mask.shape != volume.shape:
        raise DatasetError(f"{mask_path}: mask shape {list(mask.shape)} differs from its volume's {list(volume.shape)}")
    mask = resample(np.rint(mask).astype(np.float32), mask_spacing, prep.spacing, nearest=True)
    return image, crop_pad(mask, prep.shape).astype(np.uint8)


def tile_starts(length: int, tile: int, overlap: float, stride: int) -> list[int]:
    """Tile starts along one axis: every ``tile``-wide window on the ``stride`` grid, ``overlap`` apart, the
    last flush with the end, so the tiles cover ``[0, length)``."""
    if length % stride or tile % stride:
        raise DatasetError(f"volume size {length} and tile {tile} must be multiples of the encoder stride {stride}")
    step = max(stride, int(tile * (1.0 - overlap)) // stride * stride)
    starts = list(range(0, max(length - tile, 0) + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_grid(shape: tuple[int, int, int], tile: int, overlap: float, stride: int) -> list[tuple[int, int, int]]:
    """Every tile's ``(z, y, x)`` start (the product of :func:`tile_starts` per axis)."""
    axes = [tile_starts(n, tile, overlap, stride) for n in shape]
    return [(z, y, x) for z in axes[0] for y in axes[1] for x in axes[2]]


def merge_tiles(maps: list[np.ndarray], starts: list[tuple[int, int, int]], shape: tuple[int, int, int],
                stride: int) -> np.ndarray:
    """One ``(d, h, w, F)`` map of the whole volume from its tiles' ``(t, t, t, F)`` maps at ``stride``.

    Each voxel of the result is the mean of the tiles covering it (weights summing to one), so
    every voxel counts once however many tiles overlap it.
    """
    grid = tuple(n // stride for n in shape)
    total = np.zeros(grid + maps[0].shape[-1:], dtype=np.float64)
    count = np.zeros(grid, dtype=np.float64)
    for fmap, start in zip(maps, starts):
        at = tuple(slice(s // stride, s // stride + n) for s, n in zip(start, fmap.shape[:3]))
        total[at] += fmap
        count[at] += 1
    if (count == 0).any():
        raise DatasetError(f"tiles leave {int((count == 0).sum())} feature voxels of a {list(shape)} volume uncovered")
    return (total / count[..., None]).astype(np.float32)

"""Spot a CT study given without a CT window: NIfTI values in Hounsfield range, min-max intensity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featx.datasets.index import SampleIndex

HU_AIR_BELOW = -500.0  # CT air is about -1000 HU; MRI and X-ray counts are never this negative
VOLUMES_LOOKED_AT = 2


def looks_like_ct(path: str) -> float | None:
    """The lowest value of a NIfTI volume's middle slice when it is below ``HU_AIR_BELOW``, else None."""
    import nibabel as nib

    try:
        img = nib.load(path)
        if len(img.shape) < 3:
            return None
        lowest = float(np.min(np.asarray(img.dataobj[:, :, img.shape[2] // 2])))
    except Exception:  # an unreadable volume is reported by its reader, not here
        return None
    return lowest if lowest < HU_AIR_BELOW else None


def ct_window_warning(index: SampleIndex, intensity: str, source: str | Path) -> str | None:
    """A one-line warning when ``index``'s NIfTI volumes hold HU values but ``intensity`` is not a window."""
    if intensity == "window":
        return None
    volumes = index.table.loc[index.table["reader"] == "nifti", "source"].drop_duplicates()
    for path in volumes.iloc[:VOLUMES_LOOKED_AT]:
        lowest = looks_like_ct(str(path))
        if lowest is not None:
            return (f"warning: {source}: its NIfTI volumes look like CT (values down to {lowest:.0f}, e.g. {path}) "
                    f"but intensity is {intensity}, not a CT window; use --modality ct or --intensity window")
    return None

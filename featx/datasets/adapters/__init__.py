"""Built-in dataset adapters; importing this package registers them."""

from featx.datasets.adapters import (  # noqa: F401
    amos,
    chexpert,
    csv_table,
    dicom_series,
    figshare_brain_tumor,
    montgomery,
    msd,
    nih_chestxray14,
    sarscov2_ct,
)

"""Segmentation decoders on cached patch tokens: linear and U-Net, Dice / Jaccard per unit and voxel.

One wing of :mod:`featx.probes`: it reads patch tokens and masks from a feature store,
trains the paper's decoders (:mod:`featx.decoders`) with the lr chosen on validation, scores
the test split once through :class:`featx.evaluation.selection.Splits` with the shared
segmentation metrics (:mod:`featx.evaluation.segmentation`), and writes records with the
shared helpers.
"""

from featx.probes.job import SEG_SETTINGS
from featx.probes.segmentation.data import MemoryBatches, SegmentationData, StoreBatches, open_segmentation
from featx.probes.segmentation.protocol import (
    LRS,
    SegOptions,
    SegOutcome,
    evaluate_decoder,
    evaluate_seg_fewshot,
)
from featx.probes.segmentation.train import TrainConfig, fit, predict

__all__ = [
    "LRS", "SEG_SETTINGS", "MemoryBatches", "SegOptions", "SegOutcome", "SegmentationData", "StoreBatches",
    "TrainConfig", "evaluate_decoder", "evaluate_seg_fewshot", "fit", "open_segmentation", "predict",
]

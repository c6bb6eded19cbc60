"""Segmentation decoders on cached patch tokens: linear and U-Net, Dice / Jaccard per unit and voxel.

One wing of :mod:`featx.probes`: it reads patch tokens and masks from a feature store,
trains the paper's decoders with the lr chosen on validation, scores the test split once
through :class:`featx.evaluation.selection.Splits`, and writes records with the shared helpers.
"""

from featx.probes.segmentation.data import MemoryBatches, SegmentationData, StoreBatches, open_segmentation
from featx.probes.segmentation.decoders import LinearDecoder, UNetDecoder, build_decoder
from featx.probes.segmentation.metrics import SegScored, confusion_counts, reassemble, score_segmentation, volume_order
from featx.probes.segmentation.protocol import LRS, SEG_SETTINGS, SegOptions, SegOutcome, evaluate_decoder, evaluate_seg_fewshot
from featx.probes.segmentation.train import TrainConfig, fit, predict

__all__ = [
    "LRS", "SEG_SETTINGS", "LinearDecoder", "MemoryBatches", "SegOptions", "SegOutcome", "SegScored",
    "SegmentationData", "StoreBatches", "TrainConfig", "UNetDecoder", "build_decoder", "confusion_counts",
    "evaluate_decoder", "evaluate_seg_fewshot", "fit", "open_segmentation", "predict", "reassemble",
    "score_segmentation", "volume_order",
]

"""Probes on cached features: kNN / ML-kNN, linear grid, few-shot; metrics and result records.

Everything here reads a feature store (or in-memory arrays); no backbone is loaded.
"""

from featx.evaluation.features import ProbeData, ProbeError, block_names, load_probe_data
from featx.probes.knn import Neighbours, l2_normalise, search, weighted_vote
from featx.probes.linear import LinearConfig, LogisticProbe, TorchGrid, protocol_grid
from featx.evaluation.metrics import Scored, auroc_per_class, score
from featx.probes.mlknn import MLkNN
from featx.probes.protocol import Outcome, evaluate_knn, evaluate_linear, knn_neighbours
from featx.evaluation.records import LabelMismatchError, append_jsonl, read_jsonl
from featx.probes.runner import ProbeRun, run_probes
from featx.evaluation.selection import NoValidationSplit, SealedSplitError, Splits, TestAlreadyScored

__all__ = [
    "LabelMismatchError",
    "LinearConfig",
    "LogisticProbe",
    "MLkNN",
    "Neighbours",
    "NoValidationSplit",
    "Outcome",
    "ProbeData",
    "ProbeError",
    "ProbeRun",
    "Scored",
    "SealedSplitError",
    "Splits",
    "TestAlreadyScored",
    "TorchGrid",
    "append_jsonl",
    "auroc_per_class",
    "block_names",
    "evaluate_knn",
    "evaluate_linear",
    "knn_neighbours",
    "l2_normalise",
    "load_probe_data",
    "protocol_grid",
    "read_jsonl",
    "run_probes",
    "score",
    "search",
    "weighted_vote",
]

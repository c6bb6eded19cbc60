"""Probes on cached features: kNN / ML-kNN, linear grid, few-shot, segmentation decoders.

Everything here reads a feature store (or in-memory arrays); no backbone is loaded. A run is a
:class:`ProbeJob` given to :func:`run_probes`. Names are imported on first use, so that
``featx.probes.job`` (what the command line reads at start-up) stays light.
"""

from featx.lazy import lazy_exports

_EXPORTS = {
    "ProbeJob": "featx.probes.job",
    "SETTINGS": "featx.probes.job",
    "ProbeRun": "featx.probes.runner",
    "run_probes": "featx.probes.runner",
    "ProbeData": "featx.evaluation.features",
    "ProbeError": "featx.evaluation.features",
    "block_names": "featx.evaluation.features",
    "load_probe_data": "featx.evaluation.features",
    "Neighbours": "featx.probes.knn",
    "l2_normalise": "featx.probes.knn",
    "search": "featx.probes.knn",
    "weighted_vote": "featx.probes.knn",
    "LinearConfig": "featx.probes.linear",
    "LogisticProbe": "featx.probes.linear",
    "TorchGrid": "featx.probes.linear",
    "protocol_grid": "featx.probes.linear",
    "Scored": "featx.evaluation.metrics",
    "auroc_per_class": "featx.evaluation.metrics",
    "score": "featx.evaluation.metrics",
    "MLkNN": "featx.probes.mlknn",
    "Outcome": "featx.probes.protocol",
    "evaluate_knn": "featx.probes.protocol",
    "evaluate_linear": "featx.probes.protocol",
    "knn_neighbours": "featx.probes.protocol",
    "LabelMismatchError": "featx.evaluation.records",
    "append_jsonl": "featx.evaluation.records",
    "read_jsonl": "featx.evaluation.records",
    "NoValidationSplit": "featx.evaluation.selection",
    "SealedSplitError": "featx.evaluation.selection",
    "Splits": "featx.evaluation.selection",
    "TestAlreadyScored": "featx.evaluation.selection",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

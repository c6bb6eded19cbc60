"""Fine-tuning: the backbone in the training loop (full, LoRA, BitFit, and the frozen linear
control) and segmentation baselines trained from scratch (MONAI U-Net, UNETR).

It is its own stage beside the cache-based probes: it reads pixels (not feature stores) and
writes the same result records, through the shared :mod:`featx.evaluation`. A run is a
:class:`FinetuneJob` given to :func:`run_finetune`; names are imported on first use, so the
command line reads the job type without importing torch.
"""

from featx.lazy import lazy_exports

_EXPORTS = {
    "FinetuneJob": "featx.finetune.job",
    "run_finetune": "featx.finetune.job",
    "METHODS": "featx.finetune.config",
    "FinetuneConfig": "featx.finetune.config",
    "FinetuneError": "featx.finetune.config",
    "FinetuneRun": "featx.finetune.runner",
    "finetune_backbone": "featx.finetune.runner",
    "train_scratch": "featx.finetune.runner",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)

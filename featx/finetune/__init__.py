"""Fine-tuning: the backbone in the training loop (full, LoRA, BitFit, and the frozen linear
control) and segmentation baselines trained from scratch (MONAI U-Net, UNETR).

It is its own stage beside the cache-based probes: it reads pixels (not feature stores) and
writes the same result records, through the shared :mod:`featx.evaluation`.
"""

from featx.finetune.config import METHODS, FinetuneConfig, FinetuneError
from featx.finetune.runner import FinetuneRun, run_finetune, run_scratch

__all__ = ["METHODS", "FinetuneConfig", "FinetuneError", "FinetuneRun", "run_finetune", "run_scratch"]

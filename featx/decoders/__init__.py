"""Segmentation decoders and their training loss, shared by the frozen probes and fine-tuning.

:mod:`featx.probes.segmentation` trains them on cached patch tokens and :mod:`featx.finetune`
with the backbone in the loop; neither wing imports the other.
"""

"""What every evaluation wing shares: labelled units with a sealed test split, metrics with
patient-bootstrap intervals, and result records.

``featx.probes`` (cached features) and ``featx.finetune`` (backbone in the loop) both import
from here; nothing here imports either of them.
"""

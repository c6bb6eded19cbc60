"""featx: evaluate frozen vision foundation models on radiology data.

Data flow: datasets -> pipeline (preprocess, extract) -> cache (Zarr feature store)
-> probes -> report. Each stage reads only what the previous one wrote.
"""

__version__ = "0.1.0"

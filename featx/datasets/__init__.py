"""Datasets: native on-disk layouts -> a SampleIndex, and readers for the pixels."""

from featx.datasets.index import DatasetError, Problem, SampleIndex, check_patient_level
from featx.datasets.readers import load_sample
from featx.datasets.registry import adapter_options, build_index, list_datasets, register_dataset
from featx.datasets.splits import apply_split_file, export_split, read_split_file, split_summary

__all__ = [
    "DatasetError",
    "adapter_options",
    "apply_split_file",
    "export_split",
    "read_split_file",
    "split_summary",
    "Problem",
    "SampleIndex",
    "build_index",
    "check_patient_level",
    "list_datasets",
    "load_sample",
    "register_dataset",
]

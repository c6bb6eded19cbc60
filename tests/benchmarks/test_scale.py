"""benchmarks/scale.py: its synthetic NIH is read by the real NIH adapter, and its kNN table is honest."""

import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import scale  # noqa: E402


def test_the_synthetic_nih_is_in_the_native_layout_the_adapter_reads(tmp_path):
    from featx.datasets.adapters.nih_chestxray14 import FINDINGS, index_nih

    root = scale.make_nih(tmp_path / "nih", rows=120)
    assert (root / "images_001" / "images").is_dir() and (root / "images_012" / "images").is_dir()
    index = index_nih(root)
    assert len(index) == 120 and index.label_names == FINDINGS and index.task == "multilabel"
    assert set(index.table["split"]) == {"train", "val", "test"}
    assert index.labels.sum() > 0


def test_the_knn_comparison_measures_recall_against_exact_search():
    rows = scale.knn_bench(3000, 16, 100, 10, ["ivf"])
    assert [r[0].split(":")[0] for r in rows] == ["exact (IndexFlatIP)", "ivf"]
    assert rows[0][3] == 1.0 and 0.0 < rows[1][3] <= 1.0 and all(np.isfinite(r[1]) for r in rows)

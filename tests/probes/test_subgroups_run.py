"""Subgroups end to end: a store's metadata (the SampleIndex.metadata contract) -> ProbeData -> records -> report table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from featx.cache.store import FeatureStore
from featx.evaluation.features import load_probe_data
from featx.evaluation.predictions import path_of
from featx.probes.job import ProbeJob
from featx.probes.runner import run_probes
from featx.report.build import build_report


@pytest.fixture
def with_metadata(monkeypatch):
    """Stores answer ``metadata`` with chosen columns (FeatureStore.metadata: string columns row-aligned with the index)."""
    def metadata(self) -> pd.DataFrame:
        n = self.n_rows
        return pd.DataFrame({"sex": np.where(np.arange(n) % 4 < 2, "F", "M"), "age": (20 + (np.arange(n) * 7) % 70).astype(str),
                             "view": np.where(np.arange(n) % 13 == 0, "LL", "PA")})

    monkeypatch.setattr(FeatureStore, "metadata", property(metadata), raising=False)


def test_metadata_reaches_probe_data_per_volume(with_metadata, store_factory):
    data = load_probe_data(FeatureStore.open(store_factory(volumes=True, n_patients=40)))
    assert list(data.metadata.columns) == ["sex", "age", "view"] and len(data.metadata) == data.n
    assert data.metadata["sex"].tolist()[:2] == ["F", "M"]  # each volume (2 slices) takes its first slice's values
    assert data.subset(np.array([1])).metadata["sex"].tolist() == ["M"]


def test_a_store_without_metadata_gives_no_metadata(store_factory):
    store = FeatureStore.open(store_factory(n_patients=40))
    assert store.metadata.shape == (store.n_rows, 0) and load_probe_data(store).metadata is None


def test_subgroups_in_the_records_equal_sklearn_and_show_in_the_report(with_metadata, store_factory, tmp_path):
    path = store_factory(task="multiclass", n_patients=120, signal=0.8)
    out = tmp_path / "r.jsonl"
    assert run_probes(ProbeJob(stores=[path], settings=["linear"], out=out, bootstrap=100, batch_size=32)).ok
    head = next(r for r in map(json.loads, out.read_text().splitlines()) if r["split"] == "test" and r["metric"] == "auroc_macro")
    groups = {g["column"]: g for g in head["subgroups"]}
    assert set(groups) == {"sex", "age_band", "view"}
    data = load_probe_data(FeatureStore.open(path))
    test = data.split == "test"
    scores = np.load(path_of(head, out))["scores"].astype(float)
    female = (data.metadata["sex"].to_numpy()[test] == "F")
    expected = np.mean([roc_auc_score(data.labels[test][female, c], scores[female, c]) for c in range(3)])
    f = next(g for g in groups["sex"]["groups"] if g["group"] == "F")
    assert f["value"] == pytest.approx(expected, abs=1e-3)  # float16 kept scores
    ll = next(g for g in groups["view"]["groups"] if g["group"] == "LL")
    assert ll["value"] is None and "fewer than 10" in ll["too_small"]  # named, not dropped
    assert groups["sex"]["gap"] is not None and len(groups["sex"]["gap_ci"]) == 2
    text = build_report([out], tmp_path / "report").markdown.read_text()
    assert "### Subgroups (test macro AUROC per subgroup)" in text and "| sex |" in text and "age_band" in text and "LL: too small" in text

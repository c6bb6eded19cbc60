"""Paired comparisons after the fact: records of two separate `featx probe` processes, refused across test sets, in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from featx.evaluation.predictions import load, path_of
from featx.report.build import build_report
from featx.report.comparisons import compare_results
from tests.probes.conftest import make_store


def _probe(store: Path, out: Path, *settings: str) -> None:
    """One `featx probe` in its own process."""
    args = [sys.executable, "-m", "featx", "probe", "--store", str(store), "--out", str(out), "--bootstrap", "100", "--batch-size", "32"]
    for setting in settings:
        args += ["--setting", setting]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two backbones on the same planted test patients, probed by two separate processes into two results files."""
    root = tmp_path_factory.mktemp("pair")
    strong = make_store(root / "cache", backbone="strong_vit", signal=3.0, n_patients=120)
    weak = make_store(root / "cache", backbone="weak_vit", signal=0.1, n_patients=120)
    first, second = root / "first.jsonl", root / "second.jsonl"
    _probe(strong, first, "knn", "linear")
    _probe(weak, second, "knn", "linear")
    return root, first, second


def _headline(path: Path, setting: str) -> dict:
    return next(r for r in map(json.loads, path.read_text().splitlines())
                if r.get("metric") == "auroc_macro" and r.get("split") == "test" and r["setting"] == setting)


def test_records_of_two_runs_pair_and_the_stronger_backbone_wins(two_runs):
    _, first, second = two_runs
    a, b = _headline(first, "linear"), _headline(second, "linear")
    assert a["predictions"]["test_set"] == b["predictions"]["test_set"]
    kept = load(a, first)
    assert kept.scores.shape == (a["n_test"], 3) and path_of(a, first).stat().st_size < 20_000
    assert a["calibration"]["probabilities"] is True and _headline(first, "knn")["calibration"]["probabilities"] is False
    found = compare_results([first, second], n_boot=200)
    rows = [r for r in found.rows if r["setting"] == "linear"]
    assert len(rows) == 1 and {rows[0]["model_a"], rows[0]["model_b"]} == {"strong_vit (random weights)", "weak_vit (random weights)"}
    row = rows[0]
    assert row["model_a"].startswith("strong") and row["difference"] > 0 and row["ci_low"] > 0 and row["p_holm"] < 0.05
    assert row["difference"] == pytest.approx(a["value"] - b["value"], abs=1e-3)  # float16 scores: the same ranking
    assert len(row["delong"]) == 3 and all(d["p"] < 0.05 for d in row["delong"])
    assert found.marks[a["predictions"]["id"]] == "best" and found.marks[b["predictions"]["id"]] == "worse"


def test_records_on_different_test_sets_are_refused(two_runs, tmp_path):
    root, first, _ = two_runs
    other = make_store(tmp_path / "cache", backbone="other_vit", signal=3.0, n_patients=120, seed=7)  # another split
    third = tmp_path / "third.jsonl"
    _probe(other, third, "linear")
    found = compare_results([first, third], n_boot=50)
    assert not [r for r in found.rows if r["setting"] == "linear"]
    assert any("planted / linear: scored on 2 different test sets" in p for p in found.problems)


def test_report_shows_paired_table_calibration_reliability_and_reference(two_runs, tmp_path):
    _, first, second = two_runs
    report = build_report([first, second], tmp_path / "report", reference="weak_vit")
    text = report.markdown.read_text()
    assert "### Paired comparison: planted / linear (macro AUROC)" in text and "p (Holm)" in text
    assert "| weak_vit (random weights) | strong_vit (random weights) |" in text  # the reference is model A
    assert "### DeLong per class: planted / linear" in text
    assert "### Calibration (mean over classes)" in text and "scores (not calibrated probabilities)" in text
    assert "15 equal-mass" in text and (tmp_path / "report" / "figures" / "reliability.png").is_file()
    rows = [json.loads(line) for line in (tmp_path / "report" / "comparisons.jsonl").read_text().splitlines()]
    assert {r["setting"] for r in rows} == {"knn", "linear"} and all(r["model_a"].startswith("weak") for r in rows)
    html = report.html.read_text()
    assert "Paired comparison" in html and 'id="reliability"' in html
    assert np.isfinite([r["p_holm"] for r in rows]).all()

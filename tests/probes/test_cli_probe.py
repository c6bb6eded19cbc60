"""``featx probe`` through typer (the lead registers probe_command as `featx probe`)."""

import json

import typer
from typer.testing import CliRunner

from featx.cli.probe import probe_command


def _app():
    app = typer.Typer()
    app.command("probe")(probe_command)
    app.command("noop")(lambda: None)  # keep sub-command mode
    return app


def test_cli_writes_one_record_per_number(store_factory, tmp_path):
    store_factory(task="multiclass", n_patients=120)
    out = tmp_path / "r.jsonl"
    args = ["probe", "--cache", str(tmp_path / "cache"), "--dataset", "planted", "--backbone", "tiny_vit"]
    args += ["--setting", "knn", "--setting", "linear", "--out", str(out), "--bootstrap", "50", "--batch-size", "32"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    tests = [r for r in records if r["split"] == "test"]
    assert {r["setting"] for r in tests} == {"knn", "linear"}
    assert {r["metric"] for r in tests} == {"auroc_macro", "auroc", "accuracy"}
    assert all(r["value"] > 0.9 for r in tests if r["metric"] == "auroc_macro")


def test_cli_store_option_fixed_k_and_failure_exit(store_factory, tmp_path):
    path = store_factory(task="binary", drop_val=True)
    out = tmp_path / "r.jsonl"
    ok = CliRunner().invoke(_app(), ["probe", "--store", str(path), "--setting", "knn", "--k", "10", "--out", str(out), "--bootstrap", "20"])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(_app(), ["probe", "--store", str(path), "--setting", "knn", "--setting", "linear", "--k", "10", "--out", str(out), "--bootstrap", "20"])
    assert bad.exit_code == 3  # partial: knn ran, linear could not select without val
    assert "validation" in bad.output


def test_cli_bad_arguments(tmp_path):
    result = CliRunner().invoke(_app(), ["probe", "--out", str(tmp_path / "r.jsonl")])
    assert result.exit_code != 0 and "--store" in result.output
    result = CliRunner().invoke(_app(), ["probe", "--store", "x", "--setting", "svm", "--out", str(tmp_path / "r.jsonl")])
    assert result.exit_code != 0 and "unknown" in result.output


def _test_macro(out, setting="knn"):
    return [json.loads(line) for line in out.read_text().splitlines() if '"split": "test"' in line and '"metric": "auroc_macro"' in line and f'"setting": "{setting}"' in line]


def test_second_run_with_other_hyperparameters_into_the_same_results_warns_and_flags(store_factory, tmp_path):
    from featx.evaluation.ledger import LEDGER

    path = store_factory(task="multiclass", n_patients=100)
    out = tmp_path / "r.jsonl"

    def run(*extra):
        LEDGER.clear()  # a new `featx probe` process: only the results file remembers
        args = ["probe", "--store", str(path), "--setting", "knn", "--out", str(out), "--bootstrap", "10", *extra]
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 0, result.output
        return result.output

    assert "RE-USED" not in run("--k", "10")
    second = run("--k", "20")
    assert "TEST SPLIT RE-USED" in second and "--allow-test-reuse" in second
    assert [r["test_reuse"] for r in _test_macro(out)] == [0, 1]
    again = run("--k", "10")  # an identical re-run: no new look at the test
    assert "RE-USED" not in again and _test_macro(out)[-1]["test_reuse"] == 0
    deliberate = run("--k", "30", "--allow-test-reuse")
    assert "RE-USED" not in deliberate
    last = _test_macro(out)[-1]
    assert last["test_reuse"] == 2 and last["test_use"]["deliberate"] is True
    per_class = [json.loads(line) for line in out.read_text().splitlines()][-4:]
    assert all(r["test_reuse"] == 2 for r in per_class if r["split"] == "test")


def test_cli_approximate_knn_index_records_its_recall_and_a_bad_spec_is_one_line(store_factory, tmp_path):
    path = store_factory(task="multiclass", n_patients=100)
    out = tmp_path / "r.jsonl"
    args = ["probe", "--store", str(path), "--setting", "knn", "--k", "5", "--out", str(out), "--bootstrap", "10"]
    result = CliRunner().invoke(_app(), [*args, "--knn-index", "hnsw:m=8"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["hyperparameters"]["knn_index"] and 0 < r["knn_recall_at_k"] <= 1 for r in records)
    bad = CliRunner().invoke(_app(), [*args, "--knn-index", "annoy"])
    assert bad.exit_code == 1 and "annoy" in bad.output and len(out.read_text().splitlines()) == len(records)

"""What `run_probes` says: one line per problem with a count, one line per few-shot count, small sets flagged."""

import json

from featx.probes.job import ProbeJob
from featx.probes.runner import counted, run_probes


def test_repeated_messages_are_counted_once():
    assert counted(["a", "b", "a", "a"]) == ["a (3 times)", "b"]


def test_fewshot_prints_one_line_per_shot_count_and_an_unmeetable_count_is_a_note(store_factory, tmp_path):
    path = store_factory(task="binary", n_patients=40)
    said: list[str] = []
    out = tmp_path / "r.jsonl"
    run = run_probes(ProbeJob(stores=[path], settings=["fewshot"], out=out, bootstrap=20, shots=(2, 500), fewshot_seeds=3,
                     fewshot_probes=("knn",)), echo=said.append)
    assert run.problems == []  # the 2-shot results were produced
    results = [line for line in said if "fewshot-knn: test macro AUROC" in line]
    assert len(results) == 1 and "sd over 3 seeds" in results[0] and "shots=2" in results[0]
    skipped = [line for line in said if "skipped" in line]
    assert len(skipped) == 1 and "n=500" in skipped[0] and skipped[0].count("planted x tiny_vit") == 1
    small = [line for line in said if "small evaluation set" in line]
    assert len(small) == 1 and small[0].startswith("planted x tiny_vit [key ") and "test has only" in small[0]
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records and all(r["small_set_warnings"] and r["store"]["key"] == r["store_key"] for r in records)


def test_a_shot_count_no_class_can_meet_is_a_problem(store_factory, tmp_path):
    path = store_factory(task="binary", n_patients=40)
    run = run_probes(ProbeJob(stores=[path], settings=["fewshot"], out=tmp_path / "r.jsonl", bootstrap=20, shots=(500,),
                     fewshot_probes=("knn",)), echo=None)
    assert not run.records and len(run.problems) == 1 and "n=500" in run.problems[0]

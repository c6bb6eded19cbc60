"""Resumable training: a really killed run resumes to the result of an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from featx.datasets import build_index
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.train import CHECKPOINT, open_checkpoint, train

from .conftest import SIZE, TINY_VIT, fine_tune, planted_csv

REPO = Path(__file__).resolve().parents[2]
CONFIG = dict(method="full", epochs=5, batch_size=4, head_lr=1e-2, backbone_lr=1e-3, patience=5, checkpoint_every=3)


def _cli_args(csv: Path, run_dir: Path, out: Path) -> list[str]:
    args = ["finetune", "--dataset", "csv", "--root", str(csv), "--backbone", "dinov2_vits14", "--random-init",
            "--size", str(SIZE), "--run-dir", str(run_dir), "--out", str(out), "--bootstrap", "50", "--no-progress",
            "--method", CONFIG["method"], "--epochs", str(CONFIG["epochs"]), "--batch-size", str(CONFIG["batch_size"]),
            "--head-lr", str(CONFIG["head_lr"]), "--backbone-lr", str(CONFIG["backbone_lr"]),
            "--patience", str(CONFIG["patience"]), "--checkpoint-every", str(CONFIG["checkpoint_every"])]
    for key, value in TINY_VIT.items():
        args += ["--model-override", f"{key}={value}"]
    return args


def _run(index, run_dir: Path, out: Path):
    return fine_tune(index, backbone="dinov2_vits14", size=SIZE, config=FinetuneConfig(**CONFIG), run_dir=run_dir,
                        out=out, random_init=True, model_overrides=TINY_VIT, n_boot=50, progress=False)


def _numbers(records):
    return [(r["metric"], r.get("class"), r["value"], r["ci_low"], r["ci_high"], r["val_history"]) for r in records]


def test_a_killed_run_resumes_from_its_checkpoint_to_the_uninterrupted_result(tmp_path):
    csv = planted_csv(tmp_path / "data", n_patients=24)
    index = build_index("csv", csv)
    reference = _run(index, tmp_path / "whole", tmp_path / "whole.jsonl")

    run_dir, out = tmp_path / "killed", tmp_path / "killed.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "featx", *_cli_args(csv, run_dir, out)], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (run_dir / CHECKPOINT).exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(run_dir / CHECKPOINT, weights_only=True)
    assert not saved["done"] and 0 < saved["step"] < reference.result.steps
    assert not out.exists()  # killed before it could score anything

    resumed = _run(index, run_dir, out)
    assert resumed.result.resumed_from == saved["step"]
    assert resumed.result.steps == reference.result.steps
    assert resumed.result.steps_this_run == reference.result.steps - resumed.result.resumed_from
    assert _numbers(resumed.records) == _numbers(reference.records)
    for name, tensor in reference.result.best_state.items():
        assert torch.equal(tensor, resumed.result.best_state[name]), name


class Crash(Exception):
    pass


def test_interrupted_lora_with_dropout_resumes_bit_identically(tmp_path):
    from featx.backbones import load_backbone
    from featx.finetune.methods import Classifier, apply_method

    generator = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (24, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 2, (24,), generator=generator)
    config = FinetuneConfig(method="lora", epochs=3, batch_size=4, lora_r=4, lora_dropout=0.5, checkpoint_every=2)

    def fresh():
        loaded = load_backbone("dinov2_vits14", img_size=SIZE, random_init=True, model_overrides=TINY_VIT, n_last=1)
        torch.manual_seed(0)
        model = Classifier(loaded, 2)
        return model, apply_method(model, config)

    def run(run_dir: Path, crash_at: int | None = None):
        model, groups = fresh()
        calls = {"n": 0}

        def loss_fn(net: nn.Module, rows: torch.Tensor) -> torch.Tensor:
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise Crash
            return nn.functional.cross_entropy(net(pixels[rows]), labels[rows])

        def val_score(net: nn.Module) -> float:
            return -float(nn.functional.cross_entropy(net(pixels[:8]), labels[:8]))

        return train(model, groups, np.arange(8, 24), loss_fn, val_score, config, run_dir=run_dir,
                     fingerprint="lora-test", device=torch.device("cpu"), progress=False)

    whole = run(tmp_path / "whole")
    with pytest.raises(Crash):
        run(tmp_path / "crashed", crash_at=7)  # mid-epoch 2, after the checkpoint at step 6
    resumed = run(tmp_path / "crashed")
    assert resumed.resumed_from == 6
    assert resumed.history == whole.history
    assert all(torch.equal(whole.best_state[n], resumed.best_state[n]) for n in whole.best_state)


def test_a_checkpoint_of_another_configuration_is_refused(tmp_path, planted_index):
    index = planted_index(n_patients=12)
    config = FinetuneConfig(method="linear", epochs=1, batch_size=8)
    kwargs = dict(backbone="dinov2_vits14", size=SIZE, run_dir=tmp_path / "run", random_init=True,
                  model_overrides=TINY_VIT, n_boot=10, progress=False)
    first = fine_tune(index, config=config, **kwargs)
    again = fine_tune(index, config=config, **kwargs)  # finished: nothing is retrained
    assert again.result.steps_this_run == 0 and again.records[0]["value"] == first.records[0]["value"]
    with pytest.raises(FinetuneError, match="--run-dir .* another configuration"):
        fine_tune(index, config=FinetuneConfig(method="linear", epochs=1, batch_size=8, head_lr=0.5), **kwargs)
    with pytest.raises(FinetuneError, match="another configuration"):
        open_checkpoint(tmp_path / "run", "0123456789abcdef")

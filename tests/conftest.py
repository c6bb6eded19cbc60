"""Fixtures shared across the suite: a tiny random backbone and small demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

from featx.demo.data import DemoData, make_demo_data
from tests.tmpfs import tmpfs  # noqa: F401  (a fixture every test folder may use)

# A DINOv2-architecture ViT shrunk to 2 blocks of width 32: fast on 2 CPU cores.
TINY_VIT = {"depth": 2, "embed_dim": 32, "num_heads": 2}
TINY_SIZE = 28  # 2 x 2 patches of 14 px


def tiny_backbone(size: int = TINY_SIZE, **kwargs):
    """The tiny random-init DINOv2 ViT used by pipeline tests (deterministic: seed 0)."""
    from featx.backbones import load_backbone

    return load_backbone("dinov2_vits14", img_size=size, random_init=True, n_last=2, model_overrides=TINY_VIT, **kwargs)


def tiny_extract_args(dataset: str, root: Path, cache: Path, *extra: str) -> list[str]:
    """`featx extract` arguments for the tiny random backbone (without the program name)."""
    overrides = [f"--model-override={k}={v}" for k, v in TINY_VIT.items()]
    return ["extract", "--dataset", dataset, "--root", str(root), "--backbone", "dinov2_vits14", "--size",
            str(TINY_SIZE), "--cache", str(cache), "--random-init", "--n-last", "2", *overrides, *extra]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> DemoData:
    """The demo datasets at a reduced size, generated once per session."""

    return make_demo_data(Path(tmp_path_factory.mktemp("demo")), n_patients=40, n_volumes=12)


@pytest.fixture(autouse=True)
def fresh_test_ledger():
    """Each test starts with an empty process-wide test-use ledger (tests share planted data)."""
    from featx.evaluation.ledger import LEDGER

    LEDGER.clear()
    yield
    LEDGER.clear()

"""What each method trains: frozen tensors stay bit-identical, trained ones move, counts are exact."""

import numpy as np
import pytest
import torch
from torch import nn

from featx.backbones import load_backbone
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.methods import Classifier, apply_method, check_lora_targets, parameter_counts
from featx.finetune.train import train

from .conftest import SIZE, TINY_VIT


def _model(method: str, **kwargs) -> tuple[Classifier, list[dict], FinetuneConfig]:
    loaded = load_backbone("dinov2_vits14", img_size=SIZE, random_init=True, model_overrides=TINY_VIT, n_last=1)
    torch.manual_seed(0)
    model = Classifier(loaded, 3)
    config = FinetuneConfig(method=method, epochs=2, batch_size=8, head_lr=1e-2, backbone_lr=1e-2, lora_r=4, **kwargs)
    return model, apply_method(model, config), config


def _train_briefly(model: Classifier, groups: list[dict], config: FinetuneConfig, run_dir) -> None:
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randint(0, 256, (32, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 3, (32,), generator=generator)

    def loss_fn(net: nn.Module, rows: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(net(pixels[rows]), labels[rows])

    train(model, groups, np.arange(32), loss_fn, lambda net: 0.0, config,
          run_dir=run_dir, fingerprint="test", device=torch.device("cpu"), progress=False)


@pytest.mark.parametrize("method", ["lora", "bitfit"])
def test_peft_leaves_frozen_tensors_bit_identical_and_moves_trained_ones(method, tmp_path):
    model, groups, config = _model(method)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    _train_briefly(model, groups, config, tmp_path)
    after = dict(model.named_parameters())
    frozen = set(before) - trained
    assert frozen and trained
    assert all(torch.equal(before[name], after[name]) for name in frozen)
    assert [name for name in trained if torch.equal(before[name], after[name])] == []
    if method == "bitfit":
        assert trained == {n for n in before if n.startswith("backbone.") and n.endswith("bias")} | {"head.weight", "head.bias"}
    else:
        assert all("lora_" in n for n in trained - {"head.weight", "head.bias"})
        assert any(n.endswith("qkv.base_layer.weight") for n in frozen)  # the adapted weights themselves stay frozen


def test_parameter_counts_equal_a_direct_count():
    reference, _, _ = _model("linear")
    head = 32 * 3 + 3
    plain_total = sum(p.numel() for p in reference.parameters())
    assert parameter_counts(reference) == (head, plain_total)

    full, _, _ = _model("full")
    assert parameter_counts(full) == (plain_total, plain_total)

    bitfit, _, _ = _model("bitfit")
    biases = sum(p.numel() for n, p in reference.trunk.named_parameters() if n.endswith("bias"))
    assert parameter_counts(bitfit) == (biases + head, plain_total)

    lora, _, config = _model("lora")
    adapted = [m for n, m in reference.trunk.named_modules() if n.rsplit(".", 1)[-1] in config.lora_targets]
    assert len(adapted) == 2 * 3  # qkv, fc1, fc2 in each of the 2 blocks
    adapter = sum(config.lora_r * (m.in_features + m.out_features) for m in adapted)
    assert parameter_counts(lora) == (adapter + head, plain_total + adapter)


def test_lora_targets_that_match_nothing_list_the_modules_that_exist():
    loaded = load_backbone("dinov2_vits14", img_size=SIZE, random_init=True, model_overrides=TINY_VIT, n_last=1)
    with pytest.raises(FinetuneError, match="q_proj matches no module") as error:
        check_lora_targets(loaded.trunk, ("qkv", "q_proj"))
    assert "qkv" in str(error.value) and "fc1" in str(error.value) and "proj" in str(error.value)


def test_gradient_checkpointing_is_switched_on_the_trunk():
    model, _, _ = _model("bitfit", grad_checkpointing=True)
    assert model.trunk.grad_checkpointing is True


def test_the_linear_control_keeps_its_frozen_backbone_in_eval_mode():
    linear, _, _ = _model("linear")
    linear.train()
    assert linear.head.training and not linear.backbone.training
    full, _, _ = _model("full")
    full.train()
    assert full.backbone.training

import pytest

from featx.finetune.config import FinetuneConfig, FinetuneError, fingerprint


def test_defaults_are_the_papers_and_unknown_methods_are_refused():
    lora = FinetuneConfig()
    assert (lora.method, lora.lora_r, lora.lora_alpha, lora.lora_dropout, lora.lora_targets) == ("lora", 48, 16, 0.1, ("qkv", "fc1", "fc2"))
    assert FinetuneConfig(method="full").effective_backbone_lr == 1e-5
    assert FinetuneConfig(method="linear", backbone_lr=1e-3).effective_backbone_lr == 0.0
    with pytest.raises(FinetuneError, match="--method 'prompt' is unknown; expected one of full, lora, bitfit, linear"):
        FinetuneConfig(method="prompt")
    with pytest.raises(FinetuneError, match="--lora-dropout"):
        FinetuneConfig(lora_dropout=1.0)


def test_hyperparameters_carry_lora_settings_only_for_lora_and_fingerprints_follow_them():
    assert "lora_r" in FinetuneConfig().hyperparameters()
    assert "lora_r" not in FinetuneConfig(method="bitfit").hyperparameters()
    a = fingerprint({"config": FinetuneConfig().hyperparameters()})
    assert a == fingerprint({"config": FinetuneConfig().hyperparameters()})
    assert a != fingerprint({"config": FinetuneConfig(lora_r=8).hyperparameters()})


def test_decoder_settings_are_recorded_only_for_segmentation_and_checked():
    assert "decoder" not in FinetuneConfig().hyperparameters() and "seg_loss" not in FinetuneConfig().hyperparameters()
    hyper = FinetuneConfig(decoder="seg_linear", seg_loss="dice_ce").hyperparameters()
    assert (hyper["decoder"], hyper["seg_loss"]) == ("seg_linear", "dice_ce")
    with pytest.raises(FinetuneError, match="--seg-loss 'focal' is unknown; expected one of dice, dice_ce"):
        FinetuneConfig(decoder="seg_unet", seg_loss="focal")

"""Segmentation fine-tuning: LoRA and BitFit train only their tensors and learn the planted shapes."""

import numpy as np
import pytest
import torch

from featx.backbones import load_backbone
from featx.datasets.preprocess import PreprocessConfig
from featx.decoders.loss import segmentation_loss
from featx.evaluation.segmentation import confusion_counts, selection_dice
from featx.finetune.config import FinetuneConfig
from featx.finetune.data import load_pixels, sealed_rows
from featx.finetune.methods import apply_method
from featx.finetune.segment import fit_segmentation
from featx.finetune.segmenter import Segmenter

from .conftest import SEG_VIT, SIZE


def mean_mask_dice(pixels, class_names) -> float:
    """The trivial predictor: the train split's mean mask at its best threshold, scored on test (Dice per unit)."""
    train, test = pixels.rows("train"), pixels.rows("test")
    frequency = (pixels.masks.read(train).numpy() == 1).mean(0)
    truth = pixels.masks.read(test, sealed_ok=True).numpy()
    best = 0.0
    for threshold in np.linspace(0.05, 0.95, 19):
        pred = np.repeat((frequency >= threshold).astype(np.uint8)[None], len(test), 0)
        best = max(best, selection_dice(confusion_counts(pred, truth, 2), pixels.unit_ids[test], class_names))
    return best


@pytest.mark.parametrize("method", ["lora", "bitfit"])
def test_peft_segmentation_keeps_frozen_tensors_bit_identical_and_learns_the_shapes(method, tmp_path, shapes_index):
    index = shapes_index
    pixels = load_pixels(index, PreprocessConfig.for_modality(index.modality, SIZE))
    loaded = load_backbone("dinov2_vits14", img_size=SIZE, random_init=True, n_last=5, patch_tokens=True,
                           model_overrides=SEG_VIT)
    torch.manual_seed(0)
    model = Segmenter(loaded, "seg_unet", 2)
    config = FinetuneConfig(method=method, epochs=10, batch_size=8, head_lr=3e-2, backbone_lr=1e-2, patience=10,
                            lora_r=4, decoder="seg_unet")
    groups = apply_method(model, config)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    classes = list(index.label_names)
    fit = fit_segmentation(model, groups, lambda logits, masks: segmentation_loss(logits, masks, 2, "dice"), pixels,
                           sealed_rows(pixels, index), classes, config, setting=f"finetune-{method}-seg_unet",
                           hyperparameters=config.hyperparameters(), run_dir=tmp_path, fingerprint="seg-test",
                           device=torch.device("cpu"), n_boot=50, progress=False)
    after = dict(model.named_parameters())
    frozen = set(before) - trained
    backbone_trained = {n for n in trained if n.startswith("backbone.")}
    assert frozen and backbone_trained and all(n.startswith("backbone.") for n in frozen)
    assert all(torch.equal(before[n], after[n]) for n in frozen)
    assert [n for n in trained if torch.equal(before[n], after[n])] == []
    if method == "lora":
        assert all("lora_" in n for n in backbone_trained)
    else:
        assert all(n.endswith("bias") for n in backbone_trained)
    dice, baseline = fit.scored.values["dice"], mean_mask_dice(pixels, classes)
    assert dice > 0.7 and dice > baseline + 0.3, (dice, baseline)
    assert fit.scored.unit == "volume" and fit.result.best_score == max(fit.result.history)

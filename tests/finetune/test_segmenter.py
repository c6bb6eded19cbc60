"""The segmenter feeds the probes' decoders what the extraction stores; a too-shallow backbone is refused."""

import pytest
import torch

from featx.backbones import load_backbone
from featx.decoders.models import LinearDecoder, UNetDecoder, n_parameters
from featx.finetune.config import FinetuneConfig, FinetuneError
from featx.finetune.methods import apply_method, parameter_counts
from featx.finetune.segmenter import Segmenter, check_decoder_depth

from .conftest import SEG_VIT, SIZE, TINY_VIT


def _loaded(n_last: int):
    return load_backbone("dinov2_vits14", img_size=SIZE, random_init=True, n_last=n_last, patch_tokens=True,
                         model_overrides=SEG_VIT)


def test_the_unet_decoder_reads_the_normed_patch_tokens_of_the_last_five_blocks():
    loaded = _loaded(5)
    model = Segmenter(loaded, "seg_unet", 3).eval()
    assert isinstance(model.head, UNetDecoder) and model.layers == [f"block_{i}" for i in range(5)]
    seen = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append([t.clone() for t in inputs[0]]))
    pixels = torch.randint(0, 256, (2, 1, SIZE, SIZE), dtype=torch.uint8)
    with torch.no_grad():
        logits = model(pixels)
        mean = torch.tensor(loaded.spec.mean).view(1, 3, 1, 1)
        std = torch.tensor(loaded.spec.std).view(1, 3, 1, 1)
        extracted = loaded.model((pixels.expand(-1, 3, -1, -1).float() / 255 - mean) / std)  # as featx extract feeds it
    assert logits.shape == (2, 3, SIZE, SIZE)
    for tokens, layer in zip(seen[0], model.layers):
        assert tokens.shape == (2, 4, 4, 32)
        assert torch.allclose(tokens, extracted[layer]["patch"], atol=1e-5)


def test_the_linear_decoder_reads_the_last_block_and_the_linear_control_trains_only_the_decoder():
    model = Segmenter(_loaded(1), "seg_linear", 2)
    assert isinstance(model.head, LinearDecoder) and model.layers == ["block_4"]
    apply_method(model, FinetuneConfig(method="linear", decoder="seg_linear"))
    trainable, total = parameter_counts(model)
    assert trainable == n_parameters(model.head) == 32 * 2 + 2 and total > trainable


def test_a_backbone_with_fewer_blocks_than_the_decoder_reads_is_refused_without_weights():
    with pytest.raises(FinetuneError, match=r"--decoder seg_unet reads the patch tokens of the last 5 blocks and "
                                            r"dinov2_vits14 has fewer \(.*only 2 blocks\); use --decoder seg_linear"):
        check_decoder_depth("dinov2_vits14", SIZE, "seg_unet", TINY_VIT)
    check_decoder_depth("dinov2_vits14", SIZE, "seg_linear", TINY_VIT)
    check_decoder_depth("dinov2_vits14", SIZE, "seg_unet", SEG_VIT)

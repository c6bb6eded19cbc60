"""Decoder shapes and structure as PROTOCOL.md gives them."""

import pytest
import torch
from torch import nn

from featx.decoders.models import LinearDecoder, UNetDecoder, build_decoder, n_parameters


def tokens(n_blocks, dim=32, grid=4, batch=2):
    return [torch.randn(batch, grid, grid, dim) for _ in range(n_blocks)]


def test_linear_is_one_1x1_conv_upsampled_to_the_mask():
    model = LinearDecoder([32], n_classes=3, out_size=56)
    assert model(tokens(1)).shape == (2, 3, 56, 56)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (1, 1)
    assert n_parameters(model) == 32 * 3 + 3


def test_unet_has_four_up_steps_with_channels_d_to_d_over_8():
    model = UNetDecoder([16, 16, 16, 16, 64], n_classes=2, out_size=50)
    assert model([torch.randn(2, 4, 4, 16)] * 4 + [torch.randn(2, 4, 4, 64)]).shape == (2, 2, 50, 50)
    assert [up.out_channels for up in model.ups] == [64, 32, 16, 8]
    assert all(up.kernel_size == (2, 2) and up.stride == (2, 2) for up in model.ups)
    assert [s[0].in_channels for s in model.skips] == [16] * 4
    assert [f[0].in_channels for f in model.fuse] == [128, 64, 32, 16]


def test_unet_skips_deepest_first():
    model = UNetDecoder([8, 8, 8, 8, 8], n_classes=2, out_size=16).eval()
    inputs = tokens(5, dim=8, grid=1, batch=1)
    changed = list(inputs)
    changed[0] = changed[0] + 5.0  # the shallowest skip enters at the last (finest) step only
    with torch.no_grad():
        captured = []
        hook = model.skips[3].register_forward_hook(lambda m, i, o: captured.append(i[0].clone()))
        model(changed)
        hook.remove()
    assert torch.allclose(captured[0].permute(0, 2, 3, 1), changed[0])


def test_unet_needs_five_blocks():
    with pytest.raises(ValueError, match="5 blocks"):
        build_decoder("seg_unet", [32, 32], 2, 28)
    with pytest.raises(ValueError, match="unknown decoder"):
        build_decoder("seg_fpn", [32], 2, 28)

"""featx.backbones.dinov2: shapes, norm policy, registers dropped, original-format checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featx.backbones import list_backbones, load_backbone, save_weights
from featx.backbones.dinov2 import convert_dinov2_original

from .conftest import TINY, images, shapes

NAMES = ["dinov2_vits14", "dinov2_vitb14", "dinov2_vitl14", "dinov2_vitg14"]


def test_all_sizes_and_register_variants_registered():
    registered = set(list_backbones())
    for name in NAMES:
        assert name in registered and f"{name}_reg4" in registered


@pytest.mark.parametrize("name", ["dinov2_vits14", "dinov2_vits14_reg4"])
@pytest.mark.parametrize("size,grid", [(28, 2), (56, 4)])
def test_feature_shapes_at_two_resolutions(name, size, grid):
    loaded = load_backbone(name, img_size=size, random_init=True, model_overrides=TINY[name], patch_tokens=True)
    out = loaded.model(images(size))
    expected = {"cls": (2, 64), "pooled": (2, 64), "patch": (2, grid, grid, 64)}
    assert shapes(out) == {f"block_{i}": expected for i in range(4)}
    assert loaded.spec.patch_size == 14 and loaded.spec.native_size == 518
    assert loaded.spec.mean == (0.485, 0.456, 0.406)


def test_n_last_one_and_no_patch_tokens():
    loaded = load_backbone("dinov2_vits14", img_size=28, random_init=True, model_overrides=TINY["dinov2_vits14"],
                           n_last=1)
    out = loaded.model(images(28))
    assert list(out) == ["block_3"] and set(out["block_3"]) == {"cls", "pooled"}


def test_registers_dropped_and_final_norm_applied():
    loaded = load_backbone("dinov2_vits14_reg4", img_size=56, random_init=True,
                           model_overrides=TINY["dinov2_vits14_reg4"], patch_tokens=True)
    trunk = loaded.model.trunk
    assert trunk.num_reg_tokens == 4 and trunk.num_prefix_tokens == 5
    x = images(56)
    out = loaded.model(x)["block_3"]
    with torch.inference_mode():
        tokens = trunk.forward_features(x)  # final norm applied, [cls, 4 registers, 16 patches]
    assert tokens.shape[1] == 1 + 4 + 16
    torch.testing.assert_close(out["cls"], tokens[:, 0])
    torch.testing.assert_close(out["pooled"], tokens[:, 5:].mean(1))
    torch.testing.assert_close(out["patch"], tokens[:, 5:].reshape(2, 4, 4, 64))
    assert loaded.config["registers_dropped"] is True


def test_intermediate_blocks_get_the_final_norm():
    loaded = load_backbone("dinov2_vits14", img_size=28, random_init=True, model_overrides=TINY["dinov2_vits14"])
    trunk = loaded.model.trunk
    x = images(28)
    with torch.inference_mode():
        h = trunk.norm_pre(trunk._pos_embed(trunk.patch_embed(x)))
        for block in trunk.blocks[:3]:
            h = block(h)
        normed = trunk.norm(h)
        out = loaded.model(x)["block_2"]
    torch.testing.assert_close(out["cls"], normed[:, 0])
    torch.testing.assert_close(out["pooled"], normed[:, 1:].mean(1))


def _to_original_format(timm_sd: dict, registers: bool, swiglu: bool) -> dict:
    """Invert featx's conversion: timm keys -> facebookresearch/dinov2 torch-hub keys."""
    sd = {}
    for key, value in timm_sd.items():
        if swiglu:
            key = key.replace("mlp.fc1.", "mlp.w12.").replace("mlp.fc2.", "mlp.w3.")
        sd[key] = value.clone()
    sd["mask_token"] = torch.zeros(1, sd["cls_token"].shape[-1])
    if registers:
        pos0 = torch.randn(1, 1, sd["cls_token"].shape[-1])
        sd["register_tokens"] = sd.pop("reg_token")
        sd["cls_token"] = sd["cls_token"] - pos0
        sd["pos_embed"] = torch.cat([pos0, sd["pos_embed"]], dim=1)
    return sd


@pytest.mark.parametrize("name,registers,swiglu", [
    ("dinov2_vits14", False, False), ("dinov2_vits14_reg4", True, False), ("dinov2_vitg14", False, True),
])
def test_original_torch_hub_checkpoint_loads_identically(tmp_path, name, registers, swiglu):
    reference = load_backbone(name, img_size=28, random_init=True, model_overrides=TINY[name], patch_tokens=True)
    original = _to_original_format(reference.model.trunk.state_dict(), registers, swiglu)
    assert ("register_tokens" in original) == registers
    assert any(".mlp.w12." in k for k in original) == swiglu
    path = tmp_path / f"{name}_pretrain.pth"
    torch.save(original, path)
    loaded = load_backbone(name, img_size=28, weights=path, model_overrides=TINY[name], patch_tokens=True)
    x = images(28)
    ref_out, got = reference.model(x), loaded.model(x)
    for layer in ref_out:
        for kind in ref_out[layer]:
            # with registers, cls_token - pos0 + pos0 is exact only up to float rounding
            torch.testing.assert_close(got[layer][kind], ref_out[layer][kind], rtol=1e-3, atol=1e-3)


def test_position_embedding_resized_with_dinov2_rule(tmp_path):
    # "published" weights at a 6x6 grid (84 px), used at 56 px (4x4 grid)
    native = load_backbone("dinov2_vits14", img_size=84, random_init=True, model_overrides=TINY["dinov2_vits14"])
    path = save_weights(native, tmp_path / "native84.safetensors")
    loaded = load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY["dinov2_vits14"])
    pos = native.model.trunk.pos_embed.detach()
    grid = pos[:, 1:].reshape(1, 6, 6, 64).permute(0, 3, 1, 2)
    # facebookresearch/dinov2 interpolate_pos_encoding: bicubic, scale (w0 + 0.1) / M, antialias off
    expected = F.interpolate(grid, scale_factor=(4.1 / 6, 4.1 / 6), mode="bicubic", antialias=False)
    expected = torch.cat([pos[:, :1], expected.permute(0, 2, 3, 1).reshape(1, 16, 64)], dim=1)
    torch.testing.assert_close(loaded.model.trunk.pos_embed.detach(), expected)
    assert "g+0.1" in loaded.config["pos_embed_resize"]
    out = loaded.model(images(56))
    assert out["block_3"]["cls"].shape == (2, 64)


def test_conversion_maps_every_original_key():
    timm_keys = {"cls_token": torch.zeros(1, 1, 8), "reg_token": torch.zeros(1, 4, 8), "pos_embed": torch.zeros(1, 4, 8),
                 "blocks.0.mlp.fc1.weight": torch.zeros(4, 8), "blocks.0.ls1.gamma": torch.zeros(8)}
    original = _to_original_format(timm_keys, registers=True, swiglu=True)
    converted = convert_dinov2_original(original)
    assert set(converted) == set(timm_keys)
    assert converted["pos_embed"].shape == (1, 4, 8)


def test_random_init_class_token_depends_on_the_image():
    # DINOv2's LayerScale starts at 1e-5: left as is, a random model's CLS ignores the image
    loaded = load_backbone("dinov2_vits14", img_size=28, random_init=True, model_overrides=TINY["dinov2_vits14"])
    assert loaded.config["random_init_policy"] == "layer_scale_gamma=1.0"
    assert all(float(b.ls1.gamma.min()) == 1.0 for b in loaded.model.trunk.blocks)
    cls = loaded.model(images(28, batch=2))["block_3"]["cls"]
    assert (cls[0] - cls[1]).abs().max() > 1e-2

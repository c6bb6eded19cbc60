"""featx.backbones.dinov3: DINOv3 ViTs (class token after the final norm, registers dropped) and ConvNeXts."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import WeightsError, get_backbone_def, list_backbones, load_backbone, save_weights
from featx.backbones.base import IMAGENET_MEAN, IMAGENET_STD
from featx.backbones.catalog import DINOV3_CONVNEXTS, DINOV3_VITS

from .conftest import TINY, images, roundtrip_is_identical, shapes


def test_sizes_registered_with_provenance():
    names = set(list_backbones())
    assert {"dinov3_vits16", "dinov3_vits16plus", "dinov3_vitb16", "dinov3_vitl16", "dinov3_vith16plus"} <= names
    assert set(DINOV3_CONVNEXTS) <= names
    for name in DINOV3_VITS:
        spec = get_backbone_def(name).spec
        assert (spec.patch_size, spec.native_size, spec.mean, spec.std) == (16, 256, IMAGENET_MEAN, IMAGENET_STD)
        assert spec.licence == "dinov3-license" and "lvd1689m" in spec.provenance
    assert get_backbone_def("dinov3_convnext_tiny").spec.patch_size is None


@pytest.mark.parametrize("name", ["dinov3_vits16", "dinov3_vith16plus"])
@pytest.mark.parametrize("size,grid", [(32, 2), (48, 3)])
def test_feature_shapes_at_two_resolutions(name, size, grid):
    loaded = load_backbone(name, img_size=size, random_init=True, n_last=4, patch_tokens=True,
                           model_overrides=TINY[name])
    out = loaded.model(images(size))
    assert loaded.layer_names == ["block_0", "block_1", "block_2", "block_3"]
    expected = {"cls": (2, 64), "pooled": (2, 64), "patch": (2, grid, grid, 64)}
    assert shapes(out) == dict.fromkeys(loaded.layer_names, expected)
    assert loaded.patch_grid() == (grid, grid) and loaded.feature_dims == dict.fromkeys(loaded.layer_names, 64)


def test_cls_token_after_final_norm_and_registers_dropped():
    loaded = load_backbone("dinov3_vits16", img_size=48, random_init=True, n_last=1, patch_tokens=True,
                           model_overrides=TINY["dinov3_vits16"])
    trunk = loaded.trunk
    assert trunk.num_prefix_tokens == 5 and tuple(trunk.reg_token.shape) == (1, 4, 64)
    x = images(48)
    with torch.inference_mode():
        tokens = trunk.forward_features(x)  # (B, 1 + 4 + 9, D), final norm applied
        out = loaded.model(x)["block_3"]
    assert tokens.shape[1] == 1 + 4 + 9
    torch.testing.assert_close(out["cls"], tokens[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out["patch"], tokens[:, 5:].reshape(2, 3, 3, 64), rtol=0, atol=1e-6)
    torch.testing.assert_close(out["pooled"], tokens[:, 5:].mean(dim=1), rtol=0, atol=1e-6)
    # not timm's default (avg) pooling, which would be the patch mean
    assert not torch.allclose(out["cls"], out["pooled"], atol=1e-3)
    cfg = loaded.config
    assert cfg["registers_dropped"] is True and cfg["cls_policy"] == "cls_token"
    assert cfg["weights_provenance"]["licence"] == "dinov3-license"
    assert cfg["random_init_policy"] == "layer_scale_gamma=1.0"
    assert cfg["pos_embed_resize"].startswith("none (rotary")


def test_timm_name_of_a_dinov3_model_is_a_vit_not_a_cnn():
    definition = get_backbone_def("vit_small_patch16_dinov3_qkvb.lvd1689m")
    assert definition.spec.family == "timm_vit" and definition.spec.patch_size == 16
    loaded = load_backbone("vit_small_patch16_dinov3_qkvb.lvd1689m", img_size=32, random_init=True, n_last=1,
                           patch_tokens=True, model_overrides=TINY["dinov3_vits16"])
    assert tuple(loaded.model(images(32))["block_3"]["patch"].shape) == (2, 2, 2, 64)  # registers dropped
    assert loaded.config["random_init_policy"] == "layer_scale_gamma=1.0"


def test_random_init_class_token_depends_on_the_image():
    loaded = load_backbone("dinov3_vits16", img_size=32, random_init=True, n_last=1,
                           model_overrides=TINY["dinov3_vits16"])
    cls = loaded.model(images(32, batch=2))["block_3"]["cls"]
    assert (cls[0] - cls[1]).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["dinov3_vits16", "dinov3_convnext_tiny"])
def test_save_load_bit_identical(tmp_path, name):
    assert roundtrip_is_identical(name, tmp_path, 64, TINY[name])


def test_wrong_checkpoint_fails_naming_the_tensor(tmp_path):
    small = load_backbone("dinov3_vits16", img_size=32, random_init=True, n_last=1,
                          model_overrides=TINY["dinov3_vits16"])
    path = save_weights(small, tmp_path / "s.safetensors")
    with pytest.raises(WeightsError, match=r"'cls_token' has shape \(1, 1, 64\) in the file, the model expects \(1, 1, 96\)"):
        load_backbone("dinov3_vits16", img_size=32, weights=path,
                      model_overrides={**TINY["dinov3_vits16"], "embed_dim": 96})
    from featx.backbones.weights import save_state_dict

    no_registers = {k: v for k, v in small.trunk.state_dict().items() if k != "reg_token"}  # e.g. a DINOv2 layout
    with pytest.raises(WeightsError, match="'reg_token'.*missing"):
        load_backbone("dinov3_vits16", img_size=32, weights=save_state_dict(no_registers, tmp_path / "o.safetensors"),
                      model_overrides=TINY["dinov3_vits16"])


@pytest.mark.parametrize("size,grid", [(64, 2), (96, 3)])
def test_convnext_pool_is_normed_global_average(size, grid):
    loaded = load_backbone("dinov3_convnext_tiny", img_size=size, random_init=True, n_last=2, patch_tokens=True,
                           model_overrides=TINY["dinov3_convnext_tiny"])
    assert loaded.layer_names == ["stage_2", "pool"] and loaded.feature_dims == {"stage_2": 64, "pool": 128}
    x = images(size)
    out = loaded.model(x)
    assert shapes(out)["pool"] == {"cls": (2, 128), "pooled": (2, 128), "patch": (2, grid, grid, 128)}
    trunk = loaded.trunk
    with torch.inference_mode():
        final = trunk.forward_features(x)
        expected = trunk.head.norm(final.mean(dim=(2, 3), keepdim=True)).flatten(1)  # DINOv3's x_norm_clstoken
    torch.testing.assert_close(out["pool"]["cls"], expected, rtol=0, atol=1e-5)
    with torch.inference_mode():
        normed_map = trunk.head.norm(final).permute(0, 2, 3, 1)  # DINOv3's x_norm_patchtokens
    torch.testing.assert_close(out["pool"]["patch"], normed_map, rtol=0, atol=1e-5)
    assert loaded.config["weights_provenance"]["licence"] == "dinov3-license"


def meta_release(trunk: torch.nn.Module, qkv_bias: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """A state dict in Meta's facebookresearch/dinov3 names (as timm's eva.checkpoint_filter_fn reads them)."""
    out = {"mask_token": torch.zeros(1, trunk.embed_dim), "rope_embed.periods": torch.ones(8)}
    for key, value in trunk.state_dict().items():
        key = key.replace("reg_token", "storage_tokens").replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma")
        key = key.replace("mlp.fc1_g", "mlp.w1").replace("mlp.fc1_x", "mlp.w2")
        if ".mlp.fc2." in key and any(".mlp.fc1_g." in k for k in trunk.state_dict()):
            key = key.replace("mlp.fc2", "mlp.w3")
        out[key] = value.clone()
    for i in range(len(trunk.blocks)):
        dim = trunk.embed_dim
        out[f"blocks.{i}.attn.qkv.bias"] = torch.zeros(3 * dim) if qkv_bias is None else qkv_bias
        out[f"blocks.{i}.attn.qkv.bias_mask"] = torch.cat([torch.ones(dim), torch.zeros(dim), torch.ones(dim)])
    return out


@pytest.mark.parametrize("name", ["dinov3_vits16", "dinov3_vith16plus"])
def test_meta_release_format_loads_identically(tmp_path, name):
    from featx.backbones.dinov3 import map_dinov3_meta_key
    from featx.backbones.weights import save_state_dict

    source = load_backbone(name, img_size=32, random_init=True, n_last=1, model_overrides=TINY[name], seed=5)
    release = meta_release(source.trunk)
    release["local_cls_norm.weight"] = torch.ones(64)  # as in the 7B release: dropped
    assert all(map_dinov3_meta_key(k) is not None or k.endswith(("mask_token", "bias_mask", "periods", "local_cls_norm.weight"))
               for k in release)
    loaded = load_backbone(name, img_size=32, weights=save_state_dict(release, tmp_path / "meta.pth"), n_last=1,
                           model_overrides=TINY[name])
    expected = source.trunk.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.trunk.state_dict().items())
    x = images(32)
    assert torch.equal(loaded.model(x)["block_3"]["cls"], source.model(x)["block_3"]["cls"])


def test_meta_release_with_real_qkv_bias_or_unknown_tensor_fails(tmp_path):
    from featx.backbones.weights import save_state_dict

    source = load_backbone("dinov3_vits16", img_size=32, random_init=True, n_last=1,
                           model_overrides=TINY["dinov3_vits16"])
    biased = meta_release(source.trunk, qkv_bias=torch.full((192,), 0.1))
    with pytest.raises(WeightsError, match="'blocks.0.attn.qkv.bias' holds non-zero query/value biases"):
        load_backbone("dinov3_vits16", img_size=32, weights=save_state_dict(biased, tmp_path / "b.pth"),
                      model_overrides=TINY["dinov3_vits16"])
    odd = {**meta_release(source.trunk), "blocks.0.attn.rotary.weight": torch.ones(64)}
    with pytest.raises(WeightsError, match="'blocks.0.attn.rotary.weight' is not part of the DINOv3 checkpoint format"):
        load_backbone("dinov3_vits16", img_size=32, weights=save_state_dict(odd, tmp_path / "o.pth"),
                      model_overrides=TINY["dinov3_vits16"])

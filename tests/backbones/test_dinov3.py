"""featx.backbones.dinov3: DINOv3 ViTs (class token after the final norm, registers dropped) and ConvNeXts."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import WeightsError, get_backbone_def, list_backbones, load_backbone, save_weights
from featx.backbones.base import IMAGENET_MEAN, IMAGENET_STD
from featx.backbones.dinov3 import DINOV3_CONVNEXTS, DINOV3_VITS

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
    assert shapes(out) == {layer: expected for layer in loaded.layer_names}
    assert loaded.patch_grid() == (grid, grid) and loaded.feature_dims == {layer: 64 for layer in loaded.layer_names}


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
    # Meta's original release names registers "storage_tokens": refused, naming the tensor timm needs
    original = {("storage_tokens" if k == "reg_token" else k): v for k, v in small.trunk.state_dict().items()}
    from featx.backbones.weights import save_state_dict

    with pytest.raises(WeightsError, match="'reg_token'.*missing"):
        load_backbone("dinov3_vits16", img_size=32, weights=save_state_dict(original, tmp_path / "o.safetensors"),
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
    assert loaded.config["weights_provenance"]["licence"] == "dinov3-license"

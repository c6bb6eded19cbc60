"""featx.backbones.timm_vit: MAE, the supervised ViT-L/16, generic timm names, pos-embed resizing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featx.backbones import BackboneError, get_backbone_def, load_backbone, save_weights
from featx.backbones.timm_vit import drop_head, resize_abs_pos_embed

from .conftest import TINY, images, shapes


@pytest.mark.parametrize("name,family", [
    ("mae_vitl16", "mae"), ("vit_large_patch16_in21k", "supervised_vit"), ("vit_small_patch16_224", "timm_vit"),
])
@pytest.mark.parametrize("size,grid", [(32, 2), (64, 4)])
def test_feature_shapes_at_two_resolutions(name, family, size, grid):
    loaded = load_backbone(name, img_size=size, random_init=True, model_overrides=TINY[name], patch_tokens=True,
                           n_last=2)
    out = loaded.model(images(size))
    expected = {"cls": (2, 64), "pooled": (2, 64), "patch": (2, grid, grid, 64)}
    assert shapes(out) == {"block_2": expected, "block_3": expected}
    assert loaded.spec.family == family and loaded.spec.patch_size == 16
    assert loaded.config["patch_grid"] == [grid, grid]


def test_cls_is_normed_class_token_and_pooled_is_mean_of_patches():
    loaded = load_backbone("mae_vitl16", img_size=32, random_init=True, model_overrides=TINY["mae_vitl16"], n_last=1)
    x = images(32)
    with torch.inference_mode():
        tokens = loaded.model.trunk.forward_features(x)  # MAE linprobe: norm(x)[:, 0]
    out = loaded.model(x)["block_3"]
    torch.testing.assert_close(out["cls"], tokens[:, 0])
    torch.testing.assert_close(out["pooled"], tokens[:, 1:].mean(1))


def test_specs_match_the_published_preprocessing():
    timm = pytest.importorskip("timm")
    mae = get_backbone_def("mae_vitl16").spec
    sup = get_backbone_def("vit_large_patch16_in21k").spec
    assert mae.mean == tuple(timm.models.get_pretrained_cfg("vit_large_patch16_224.mae").mean)
    assert sup.mean == tuple(timm.models.get_pretrained_cfg("vit_large_patch16_224.augreg_in21k").mean) == (0.5, 0.5, 0.5)
    assert mae.native_size == sup.native_size == 224


def test_in21k_classifier_head_dropped_explicitly(tmp_path):
    loaded = load_backbone("vit_large_patch16_in21k", img_size=32, random_init=True,
                           model_overrides=TINY["vit_large_patch16_in21k"], n_last=1)
    sd = dict(loaded.model.trunk.state_dict())
    sd["head.weight"] = torch.zeros(21843, 64)  # as in the published in21k weights
    sd["head.bias"] = torch.zeros(21843)
    path = tmp_path / "in21k.safetensors"
    from featx.backbones.weights import save_state_dict

    save_state_dict(sd, path)
    again = load_backbone("vit_large_patch16_in21k", img_size=32, weights=path,
                          model_overrides=TINY["vit_large_patch16_in21k"], n_last=1)
    x = images(32)
    torch.testing.assert_close(again.model(x)["block_3"]["cls"], loaded.model(x)["block_3"]["cls"])
    # but a stray tensor that is not a classifier is an error
    sd["blocks.0.extra"] = torch.zeros(1)
    save_state_dict(sd, path)
    with pytest.raises(Exception, match="blocks.0.extra"):
        load_backbone("vit_large_patch16_in21k", img_size=32, weights=path,
                      model_overrides=TINY["vit_large_patch16_in21k"], n_last=1)


def test_drop_head_keeps_heads_the_trunk_has():
    trunk = torch.nn.Module()
    trunk.head = torch.nn.Linear(2, 2)
    sd = {"head.weight": torch.zeros(2, 2), "head.bias": torch.zeros(2)}
    assert set(drop_head(sd, trunk, ("head",))) == set(sd)
    assert drop_head(sd, torch.nn.Linear(2, 2), ("head",)) == {}


def test_resize_abs_pos_embed():
    pos = torch.randn(1, 1 + 36, 8)
    same = resize_abs_pos_embed(pos, (6, 6), 1)
    assert same is pos
    out = resize_abs_pos_embed(pos, (4, 4), 1, mode="bicubic", antialias=False)
    ref = F.interpolate(pos[:, 1:].reshape(1, 6, 6, 8).permute(0, 3, 1, 2), size=(4, 4), mode="bicubic",
                        align_corners=False).permute(0, 2, 3, 1).reshape(1, 16, 8)
    torch.testing.assert_close(out, torch.cat([pos[:, :1], ref], 1))
    with pytest.raises(ValueError, match="square"):
        resize_abs_pos_embed(torch.randn(1, 1 + 35, 8), (4, 4), 1)


def test_weights_of_native_resolution_load_at_448_style_upscale(tmp_path):
    native = load_backbone("mae_vitl16", img_size=32, random_init=True, model_overrides=TINY["mae_vitl16"])
    path = save_weights(native, tmp_path / "mae.safetensors")
    big = load_backbone("mae_vitl16", img_size=64, weights=path, model_overrides=TINY["mae_vitl16"], patch_tokens=True)
    assert big.model.trunk.pos_embed.shape == (1, 17, 64)
    torch.testing.assert_close(big.model.trunk.cls_token, native.model.trunk.cls_token)
    assert big.model(images(64))["block_3"]["patch"].shape == (2, 4, 4, 64)


def test_generic_timm_names_and_unknown_names():
    spec = get_backbone_def("vit_small_patch16_224").spec
    assert spec.family == "timm_vit" and spec.patch_size == 16 and spec.has_cls_token
    tagged = get_backbone_def("vit_small_patch16_224.augreg_in21k")
    assert tagged.hf_repo == "timm/vit_small_patch16_224.augreg_in21k"
    with pytest.raises(BackboneError, match="unknown backbone"):
        get_backbone_def("definitely_not_a_model")

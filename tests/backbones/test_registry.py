"""featx.backbones.registry: the paper's names, plug-ins, timm pass-through, helpful errors."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import (
    BackboneError,
    BackboneSpec,
    describe_backbone,
    get_backbone_def,
    list_backbones,
    load_backbone,
    registry,
)
from featx.backbones.base import IMAGENET_MEAN, IMAGENET_STD
from featx.backbones.timm_vit import TimmViTDef

from .conftest import TINY_VIT, images

PAPER_NAMES = [
    "dinov2_vits14", "dinov2_vitb14", "dinov2_vitl14", "dinov2_vitg14",
    "dinov2_vits14_reg4", "dinov2_vitb14_reg4", "dinov2_vitl14_reg4", "dinov2_vitg14_reg4",
    "clip_vitl14", "openclip_vith14", "mae_vitl16", "msn_vitl16", "vit_large_patch16_in21k", "sam_vitl16",
    "densenet201", "resnet152", "vgg19",
]
FAMILIES = {"dinov2", "clip", "mae", "msn", "sam", "supervised_vit", "cnn"}


def test_every_paper_backbone_is_registered_with_a_consistent_spec():
    names = list_backbones()
    assert names == sorted(names) and set(PAPER_NAMES) <= set(names)
    for name in PAPER_NAMES:
        spec = get_backbone_def(name).spec
        assert spec.name == name and spec.family in FAMILIES and spec.description
        assert (spec.patch_size is None) == (spec.family == "cnn")
        assert spec.has_cls_token == (spec.family not in {"sam", "cnn"})
        assert len(spec.mean) == len(spec.std) == 3 and all(0 < s < 1 for s in spec.std)


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_backbone("dinov2_vits14")(lambda: None)


@pytest.fixture
def plugin_name():
    name = "test_plugin_vit"
    yield name
    registry._REGISTRY.pop(name, None)


def test_plugin_backbone_via_decorator(plugin_name):
    @registry.register_backbone(plugin_name)
    def _plugin():
        return TimmViTDef(
            BackboneSpec(name=plugin_name, family="timm_vit", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=8,
                         native_size=64, has_cls_token=True, description="plug-in test"),
            arch="vit_small_patch8_224",
        )

    assert plugin_name in list_backbones()
    loaded = load_backbone(plugin_name, img_size=32, random_init=True, model_overrides=TINY_VIT, patch_tokens=True)
    assert loaded.model(images(32))["block_3"]["patch"].shape == (2, 4, 4, 64)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(BackboneError, match="Did you mean .*dinov2_vitl14"):
        get_backbone_def("dinov2_vit14l")


def test_timm_name_passes_through_but_is_not_listed():
    definition = get_backbone_def("resnet18")
    assert definition.spec.family == "cnn" and "resnet18" not in list_backbones()
    loaded = load_backbone("resnet18", img_size=64, random_init=True, n_last=1)
    assert loaded.feature_dims == {"pool": 512}
    with torch.inference_mode():
        assert loaded.model(images(64))["pool"]["cls"].shape == (2, 512)


def test_plugin_is_described_by_building_it(plugin_name):
    registry.register_backbone(plugin_name)(lambda: TimmViTDef(
        BackboneSpec(name=plugin_name, family="timm_vit", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=16,
                     native_size=224, has_cls_token=True, description="plug-in test"),
        arch="vit_small_patch16_224",
    ))
    assert registry.get_entry(plugin_name) is None
    row = describe_backbone(plugin_name, sizes=(64,))
    assert row["feature_dim"] == 384 and row["patch_grid"] == {"64": [4, 4]} and row["layers"][-1] == "block_11"

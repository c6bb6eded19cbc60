"""featx.backbones.base: the public data types."""

from __future__ import annotations

import dataclasses

import pytest

from featx.backbones import BackboneError, BackboneSpec, get_backbone_def, load_backbone

from .conftest import TINY


def test_spec_is_frozen_and_hashable():
    spec = get_backbone_def("dinov2_vitl14").spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]
    assert hash(spec) == hash(dataclasses.replace(spec))
    assert [f.name for f in dataclasses.fields(BackboneSpec)] == [
        "name", "family", "mean", "std", "patch_size", "native_size", "has_cls_token", "description",
        "provenance", "licence"]


def test_loaded_backbone_helpers():
    loaded = load_backbone("sam_vitl16", img_size=32, random_init=True, model_overrides=TINY["sam_vitl16"])
    assert loaded.trunk is loaded.model.trunk
    assert loaded.patch_grid() == (2, 2)


@pytest.mark.parametrize("name,size", [("dinov2_vits14", 224 + 7), ("mae_vitl16", 100), ("clip_vitl14", 0)])
def test_check_img_size(name, size):
    with pytest.raises(BackboneError):
        get_backbone_def(name).check_img_size(size)
    get_backbone_def(name).check_img_size(448)

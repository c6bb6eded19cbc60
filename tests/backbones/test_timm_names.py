"""featx.backbones.timm_names: timm's model names read from its source equal timm's own registry."""

from __future__ import annotations

import timm

from featx.backbones.timm_names import is_timm_model, timm_model_names


def test_names_read_from_source_are_exactly_the_registered_ones():
    names = timm_model_names()
    assert set(timm.list_models()) <= names
    assert all(timm.is_model(name) for name in names)


def test_tags_are_ignored_as_timm_does():
    assert is_timm_model("resnet18") and is_timm_model("convnext_tiny.fb_in1k")
    assert not is_timm_model("resnet18x") and not is_timm_model("dinov2_vitl14")

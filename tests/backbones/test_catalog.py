"""featx.backbones.catalog: the tables hold every built-in backbone, and their facts are the built networks'."""

from __future__ import annotations

import pytest

from featx.backbones import get_backbone_def, list_backbones
from featx.backbones.catalog import ENTRIES, SHAPES
from featx.backbones.listing import describe_backbone
from featx.backbones.loader import measure_backbone

#: one of each kind of shape rule: a ViT with a learned position table (grows with the grid), RoPE
#: (constant), SAM (relative tables too), a CNN, VGG (fc6 kernel), open_clip and a SigLIP tower
SMALL = ["dinov2_vits14_reg4", "dinov3_vits16", "sam_vitl16", "resnet152", "vgg19", "clip_vitl14", "siglip2_vitb16_256"]
#: valid and refused sizes of every kind (not a multiple of the patch, below a CNN's stride)
SIZES = (224, 448, 28, 100, 16)


def test_every_entry_is_registered_once_with_its_shape_and_builds_its_spec():
    names = [entry.spec.name for entry in ENTRIES]
    assert len(names) == len(set(names)) == len(SHAPES) and set(names) == set(SHAPES)
    assert set(names) <= set(list_backbones())
    for entry in ENTRIES:
        definition = get_backbone_def(entry.spec.name)
        assert definition.spec == entry.spec
        assert tuple(definition.weight_candidates()) == entry.weights and entry.weights
        assert definition.cls_policy == entry.shape.cls_policy


@pytest.mark.parametrize("name", SMALL)
def test_table_facts_equal_the_built_network(name):
    assert describe_backbone(name, sizes=SIZES) == measure_backbone(name, sizes=SIZES)
    assert describe_backbone(name, sizes=(224,), n_last=2) == measure_backbone(name, sizes=(224,), n_last=2)


@pytest.mark.slow
def test_table_facts_equal_the_built_network_for_every_entry():
    for entry in ENTRIES:
        name = entry.spec.name
        assert describe_backbone(name, sizes=(224, 448, 30)) == measure_backbone(name, sizes=(224, 448, 30)), name

"""featx.backbones.siglip2: SigLIP 2 towers, no class token, ``cls`` = the attention-pool (MAP) output."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import WeightsError, get_backbone_def, list_backbones, load_backbone, save_weights
from featx.backbones.base import INCEPTION_MEAN, INCEPTION_STD
from featx.backbones.catalog import SIGLIP2_TOWERS

from .conftest import TINY, images, roundtrip_is_identical, shapes


def test_towers_registered_with_provenance():
    assert set(SIGLIP2_TOWERS) <= set(list_backbones())
    for name, (arch, _, patch, native, _) in SIGLIP2_TOWERS.items():
        definition = get_backbone_def(name)
        spec = definition.spec
        assert (spec.patch_size, spec.native_size, spec.has_cls_token) == (patch, native, False)
        assert (spec.mean, spec.std, spec.licence) == (INCEPTION_MEAN, INCEPTION_STD, "apache-2.0")
        assert definition.cls_policy == "attention_pool" and definition.hf_repo == f"timm/{arch}.v2_webli"


@pytest.mark.parametrize("name,size,grid", [("siglip2_vitb16_256", 32, 2), ("siglip2_vitb16_256", 64, 4),
                                            ("siglip2_so400m14_224", 28, 2), ("siglip2_so400m14_224", 56, 4)])
def test_feature_shapes_at_two_resolutions(name, size, grid):
    loaded = load_backbone(name, img_size=size, random_init=True, n_last=4, patch_tokens=True,
                           model_overrides=TINY[name])
    out = loaded.model(images(size))
    expected = {"cls": (2, 64), "pooled": (2, 64), "patch": (2, grid, grid, 64)}
    assert shapes(out) == dict.fromkeys(["block_0", "block_1", "block_2", "block_3"], expected)
    assert loaded.patch_grid() == (grid, grid)


def test_cls_is_the_attention_pool_output():
    loaded = load_backbone("siglip2_vitb16_256", img_size=32, random_init=True, n_last=2, patch_tokens=True,
                           model_overrides=TINY["siglip2_vitb16_256"])
    trunk = loaded.trunk
    assert trunk.cls_token is None and trunk.num_prefix_tokens == 0
    x = images(32)
    with torch.inference_mode():
        out = loaded.model(x)
        embedding = trunk.forward_head(trunk.forward_features(x), pre_logits=True)  # the tower's image embedding
        tokens = trunk.norm(trunk.blocks[:3](trunk._pos_embed(trunk.patch_embed(x))))
    torch.testing.assert_close(out["block_3"]["cls"], embedding, rtol=0, atol=1e-5)
    torch.testing.assert_close(out["block_2"]["cls"], trunk.attn_pool(tokens), rtol=0, atol=1e-5)
    torch.testing.assert_close(out["block_2"]["pooled"], tokens.mean(dim=1), rtol=0, atol=1e-5)
    assert not torch.allclose(out["block_3"]["cls"], out["block_3"]["pooled"], atol=1e-3)
    assert loaded.config["cls_policy"] == "attention_pool"


def test_save_load_bit_identical_and_position_table_resized(tmp_path):
    assert roundtrip_is_identical("siglip2_vitb16_256", tmp_path, 32, TINY["siglip2_vitb16_256"])
    native = load_backbone("siglip2_vitb16_256", img_size=64, random_init=True, n_last=1,
                           model_overrides=TINY["siglip2_vitb16_256"])
    path = save_weights(native, tmp_path / "native.safetensors")
    smaller = load_backbone("siglip2_vitb16_256", img_size=32, weights=path, n_last=1,
                            model_overrides=TINY["siglip2_vitb16_256"])
    assert tuple(smaller.trunk.pos_embed.shape) == (1, 4, 64)
    assert smaller.config["pos_embed_resize"] == "bicubic, antialias=True"


def test_wrong_checkpoint_fails_naming_the_tensor(tmp_path):
    from featx.backbones.weights import save_state_dict

    vit = load_backbone("vit_small_patch16_224", img_size=32, random_init=True, n_last=1,
                        model_overrides=TINY["vit_small_patch16_224"])  # class token, no attention pool
    path = save_weights(vit, tmp_path / "vit.safetensors")
    with pytest.raises(WeightsError, match=r"'pos_embed' has shape \(1, 5, 64\) in the file.*13 missing, 1 unexpected"):
        load_backbone("siglip2_vitb16_256", img_size=32, weights=path, model_overrides=TINY["siglip2_vitb16_256"])
    tower = load_backbone("siglip2_vitb16_256", img_size=32, random_init=True, n_last=1,
                          model_overrides=TINY["siglip2_vitb16_256"])
    headless = {k: v for k, v in tower.trunk.state_dict().items() if not k.startswith("attn_pool.")}
    with pytest.raises(WeightsError, match="'attn_pool.latent'.*missing"):
        load_backbone("siglip2_vitb16_256", img_size=32, weights=save_state_dict(headless, tmp_path / "h.safetensors"),
                      model_overrides=TINY["siglip2_vitb16_256"])

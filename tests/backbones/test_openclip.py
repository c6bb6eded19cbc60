"""featx.backbones.openclip: CLIP / OpenCLIP image towers through open_clip."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import BackboneError, get_backbone_def, load_backbone, save_weights
from featx.backbones.weights import save_state_dict

from .conftest import TINY, images, shapes


@pytest.mark.parametrize("name", ["clip_vitl14", "openclip_vith14"])
@pytest.mark.parametrize("size,grid", [(28, 2), (56, 4)])
def test_feature_shapes_at_two_resolutions(name, size, grid):
    loaded = load_backbone(name, img_size=size, random_init=True, model_overrides=TINY[name], patch_tokens=True,
                           n_last=2)
    out = loaded.model(images(size))
    expected = {"cls": (2, 64), "pooled": (2, 64), "patch": (2, grid, grid, 64)}
    assert shapes(out) == {"block_2": expected, "block_3": expected}
    assert loaded.spec.family == "clip"


def test_clip_mean_std_and_activation():
    import open_clip

    spec = get_backbone_def("clip_vitl14").spec
    assert spec.mean == open_clip.OPENAI_DATASET_MEAN and spec.std == open_clip.OPENAI_DATASET_STD
    assert get_backbone_def("openclip_vith14").spec.mean == open_clip.OPENAI_DATASET_MEAN
    loaded = load_backbone("clip_vitl14", img_size=28, random_init=True, model_overrides=TINY["clip_vitl14"])
    acts = {type(m).__name__ for m in loaded.model.trunk.modules()}
    assert "QuickGELU" in acts  # OpenAI's ViT-L/14 was trained with QuickGELU
    h = load_backbone("openclip_vith14", img_size=28, random_init=True, model_overrides=TINY["openclip_vith14"])
    assert "QuickGELU" not in {type(m).__name__ for m in h.model.trunk.modules()}


def test_cls_is_pre_projection_image_feature():
    loaded = load_backbone("clip_vitl14", img_size=56, random_init=True, model_overrides=TINY["clip_vitl14"], n_last=1)
    trunk = loaded.model.trunk
    x = images(56)
    with torch.inference_mode():
        embedding = trunk(x)  # CLIP image embedding = ln_post(cls) @ proj
        out = loaded.model(x)["block_3"]
    assert embedding.shape == (2, 32)
    torch.testing.assert_close(out["cls"] @ trunk.proj, embedding)
    assert loaded.config["arch"]["projection_applied"] is False


def test_full_clip_checkpoint_keeps_visual_tower(tmp_path):
    a = load_backbone("clip_vitl14", img_size=28, random_init=True, model_overrides=TINY["clip_vitl14"])
    full = {"visual." + k: v for k, v in a.model.trunk.state_dict().items()}
    full.update({"logit_scale": torch.tensor(4.6), "token_embedding.weight": torch.zeros(10, 8),
                 "transformer.resblocks.0.ln_1.weight": torch.ones(8), "positional_embedding": torch.zeros(77, 8)})
    path = tmp_path / "open_clip_model.safetensors"
    save_state_dict(full, path)
    b = load_backbone("clip_vitl14", img_size=28, weights=path, model_overrides=TINY["clip_vitl14"])
    x = images(28)
    assert torch.equal(a.model(x)["block_3"]["cls"], b.model(x)["block_3"]["cls"])
    # at double resolution the position grid is resized (2x2 -> 4x4)
    c = load_backbone("clip_vitl14", img_size=56, weights=path, model_overrides=TINY["clip_vitl14"], patch_tokens=True)
    assert c.model.trunk.positional_embedding.shape == (17, 64)
    assert c.model(images(56))["block_3"]["patch"].shape == (2, 4, 4, 64)


def test_visual_only_weights_roundtrip_and_bad_override(tmp_path):
    a = load_backbone("openclip_vith14", img_size=28, random_init=True, model_overrides=TINY["openclip_vith14"])
    path = save_weights(a, tmp_path / "h14.pth")
    b = load_backbone("openclip_vith14", img_size=28, weights=path, model_overrides=TINY["openclip_vith14"])
    x = images(28)
    assert torch.equal(a.model(x)["block_3"]["pooled"], b.model(x)["block_3"]["pooled"])
    with pytest.raises(BackboneError, match="unknown model override"):
        load_backbone("openclip_vith14", img_size=28, random_init=True, model_overrides={"depth": 2})

"""featx.backbones.biomedclip: the image tower of BiomedCLIP's open_clip checkpoint, before the projection."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import WeightsError, get_backbone_def, load_backbone
from featx.backbones.base import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from featx.backbones.biomedclip import convert_biomedclip_state_dict
from featx.backbones.catalog import BIOMEDCLIP_HF_REPO
from featx.backbones.weights import save_state_dict

from .conftest import TINY, images, roundtrip_is_identical

#: BiomedCLIP's open_clip_config.json model_cfg.vision_cfg
VISION_CFG = {"timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False, "timm_pool": "",
              "timm_proj": "linear", "image_size": 224}


def open_clip_tower():
    """BiomedCLIP's image tower exactly as open_clip builds it from that config (shapes only)."""
    from open_clip.model import _build_vision_tower

    with torch.device("meta"):
        return _build_vision_tower(512, VISION_CFG)


def published_checkpoint(trunk: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """An open_clip CustomTextCLIP state dict: ``visual.trunk.*`` from ``trunk``, the projection, a text side."""
    g = torch.Generator().manual_seed(seed)
    sd = {f"visual.trunk.{k}": v.clone() for k, v in trunk.state_dict().items()}
    width = sd["visual.trunk.cls_token"].shape[-1]
    sd["visual.head.proj.weight"] = torch.randn(32, width, generator=g)
    sd["text.transformer.embeddings.word_embeddings.weight"] = torch.randn(10, 16, generator=g)
    sd["text.proj.0.weight"] = torch.randn(16, 16, generator=g)
    sd["logit_scale"] = torch.tensor(4.6)
    return sd


def test_open_clip_tower_is_the_class_token_of_timm_vit_b16():
    tower = open_clip_tower()
    assert tower.trunk.global_pool == "token"  # timm_pool "" leaves timm's class-token pooling
    visual = {f"visual.{k}" for k in tower.state_dict()}
    with torch.device("meta"):
        meta = get_backbone_def("biomedclip_vitb16").build(224, {})
    converted = convert_biomedclip_state_dict({k: torch.empty(0) for k in visual})
    assert set(converted) == set(meta.state_dict())  # every tensor of the real ViT-B/16 tower is covered
    assert visual - {f"visual.trunk.{k}" for k in converted} == {"visual.head.proj.weight"}


def test_spec_and_offline_snapshot_location():
    definition = get_backbone_def("biomedclip_vitb16")
    spec = definition.spec
    assert (spec.mean, spec.std, spec.patch_size, spec.native_size) == (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, 16, 224)
    assert spec.licence == "mit" and BIOMEDCLIP_HF_REPO in spec.provenance
    hf = [c for c in definition.weight_candidates() if c.kind == "hf"]
    assert {c.repo_id for c in hf} == {BIOMEDCLIP_HF_REPO} and hf[0].filename == "open_clip_pytorch_model.bin"


@pytest.mark.parametrize("size,grid", [(32, 2), (64, 4)])
def test_snapshot_folder_loads_pre_projection_features(tmp_path, size, grid):
    source = load_backbone("biomedclip_vitb16", img_size=32, random_init=True, n_last=1,
                           model_overrides=TINY["biomedclip_vitb16"])
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    torch.save(published_checkpoint(source.trunk), snapshot / "open_clip_pytorch_model.bin")
    loaded = load_backbone("biomedclip_vitb16", img_size=size, weights=snapshot, n_last=2, patch_tokens=True,
                           model_overrides=TINY["biomedclip_vitb16"])
    assert loaded.weights_source.endswith("open_clip_pytorch_model.bin")
    out = loaded.model(images(size))
    assert {k: tuple(v.shape) for k, v in out["block_3"].items()} == {"cls": (2, 64), "pooled": (2, 64),
                                                                      "patch": (2, grid, grid, 64)}
    if size == 32:
        with torch.inference_mode():
            tokens = source.trunk.forward_features(images(size))
        torch.testing.assert_close(out["block_3"]["cls"], tokens[:, 0], rtol=0, atol=1e-6)
    assert loaded.config["arch"]["projection_applied"] is False


def test_snapshot_preprocess_cfg_must_agree_with_the_mean_std(tmp_path):
    import json

    source = load_backbone("biomedclip_vitb16", img_size=32, random_init=True, n_last=1,
                           model_overrides=TINY["biomedclip_vitb16"])
    torch.save(published_checkpoint(source.trunk), tmp_path / "open_clip_pytorch_model.bin")
    config = {"model_cfg": {"embed_dim": 512, "vision_cfg": VISION_CFG},
              "preprocess_cfg": {"mean": list(OPENAI_CLIP_MEAN), "std": list(OPENAI_CLIP_STD)}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    load_backbone("biomedclip_vitb16", img_size=32, weights=tmp_path, model_overrides=TINY["biomedclip_vitb16"])
    config["preprocess_cfg"]["std"] = [0.5, 0.5, 0.5]
    (tmp_path / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match=r"open_clip_config.json says mean .* / std \[0.5, 0.5, 0.5\]"):
        load_backbone("biomedclip_vitb16", img_size=32, weights=tmp_path, model_overrides=TINY["biomedclip_vitb16"])


def test_save_load_bit_identical(tmp_path):
    assert roundtrip_is_identical("biomedclip_vitb16", tmp_path, 32, TINY["biomedclip_vitb16"])


def test_wrong_checkpoint_fails_naming_the_tensor(tmp_path):
    source = load_backbone("biomedclip_vitb16", img_size=32, random_init=True, n_last=1,
                           model_overrides=TINY["biomedclip_vitb16"])
    odd = {**published_checkpoint(source.trunk), "visual.head.mlp.fc1.weight": torch.zeros(2, 2)}
    with pytest.raises(WeightsError, match="'visual.head.mlp.fc1.weight' is not part of the BiomedCLIP"):
        load_backbone("biomedclip_vitb16", img_size=32, weights=save_state_dict(odd, tmp_path / "odd.pth"),
                      model_overrides=TINY["biomedclip_vitb16"])
    with pytest.raises(WeightsError, match=r"'cls_token' has shape \(1, 1, 64\) in the file, the model expects \(1, 1, 768\)"):
        load_backbone("biomedclip_vitb16", img_size=32,
                      weights=save_state_dict(published_checkpoint(source.trunk), tmp_path / "tiny.pth"))

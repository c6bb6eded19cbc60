"""featx.backbones.rad_dino: the Hugging Face Dinov2Model layout maps completely onto timm's DINOv2 ViT.

The published layout is produced by ``transformers`` itself: a tiny random ``Dinov2Model`` written
with ``save_pretrained`` (the same code that wrote microsoft/rad-dino's ``model.safetensors``), so
key names are transformers', not a transcription. Features are compared with the HF model's own
``last_hidden_state``.
"""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors.torch import load_file

from featx.backbones import WeightsError, get_backbone_def, load_backbone
from featx.backbones.catalog import RAD_DINO_MEAN, RAD_DINO_STD
from featx.backbones.rad_dino import convert_rad_dino_state_dict, map_rad_dino_key
from featx.backbones.weights import save_state_dict

from .conftest import TINY, images, roundtrip_is_identical

DIM, HEADS, PATCH, SIZE = 64, 2, 14, 56  # 4x4 positions in the checkpoint


def hf_dinov2(depth: int, seed: int = 0):
    """A random transformers Dinov2Model with RAD-DINO's architecture (ViT-B/14 layout) at tiny width."""
    config = transformers.Dinov2Config(hidden_size=DIM, num_hidden_layers=depth, num_attention_heads=HEADS,
                                       mlp_ratio=4, image_size=SIZE, patch_size=PATCH, layerscale_value=1.0,
                                       layer_norm_eps=1e-6, qkv_bias=True, use_swiglu_ffn=False)
    torch.manual_seed(seed)
    model = transformers.Dinov2Model(config).eval()
    with torch.no_grad():  # make norms, LayerScale and tokens non-trivial so a swapped mapping shows
        for name, param in model.named_parameters():
            if name.endswith(("lambda1", "norm1.weight", "norm2.weight", "layernorm.weight")):
                param.copy_(1 + 0.3 * torch.randn_like(param))
            elif name.endswith(("bias", "cls_token", "position_embeddings")):
                param.copy_(0.1 * torch.randn_like(param))
    return model


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """(HF model, snapshot folder written by save_pretrained) at depth 4."""
    model = hf_dinov2(depth=4)
    folder = tmp_path_factory.mktemp("rad-dino")
    model.save_pretrained(folder)
    return model, folder


def test_spec_mean_std_and_provenance():
    definition = get_backbone_def("rad_dino")
    spec = definition.spec
    assert (spec.mean, spec.std, spec.patch_size, spec.native_size) == (RAD_DINO_MEAN, RAD_DINO_STD, 14, 518)
    assert "microsoft/rad-dino" in spec.provenance and spec.licence
    assert definition.arch == "vit_base_patch14_dinov2"
    assert any(c.repo_id == "microsoft/rad-dino" for c in definition.weight_candidates())


def test_mapping_covers_every_tensor_of_the_published_layout(tmp_path):
    model = hf_dinov2(depth=12)  # RAD-DINO's 12 blocks
    model.save_pretrained(tmp_path)
    published = load_file(str(tmp_path / "model.safetensors"))
    assert "encoder.layer.11.attention.attention.query.weight" in published  # the published (transformers 4) names
    timm_sd = load_backbone("rad_dino", img_size=SIZE, random_init=True, n_last=1,
                            model_overrides={**TINY["rad_dino"], "depth": 12}).trunk.state_dict()
    dropped = [k for k in published if map_rad_dino_key(k) is None]  # KeyError for any tensor the mapping misses
    assert dropped == ["embeddings.mask_token"]
    converted = convert_rad_dino_state_dict(published)
    assert set(converted) == set(timm_sd)  # every timm tensor filled, nothing left over
    assert {k: tuple(v.shape) for k, v in converted.items()} == {k: tuple(v.shape) for k, v in timm_sd.items()}
    assert len(published) == 1 + len(converted) + 2 * 2 * 12  # q, k, v (weight, bias) fold into one qkv


@pytest.mark.parametrize("size", [SIZE, 84])
def test_features_equal_the_hf_model(published, size):
    model, folder = published
    loaded = load_backbone("rad_dino", img_size=size, weights=folder, n_last=2, patch_tokens=True,
                           model_overrides=TINY["rad_dino"])
    x = images(size)
    with torch.inference_mode():
        hidden = model(pixel_values=x, output_hidden_states=True)
        out = loaded.model(x)
        block_2 = model.layernorm(hidden.hidden_states[3])  # hidden_states[0] is the embedding output
    grid = size // PATCH
    last = hidden.last_hidden_state  # after Dinov2Model.layernorm
    torch.testing.assert_close(out["block_3"]["cls"], last[:, 0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["block_3"]["patch"], last[:, 1:].reshape(2, grid, grid, DIM), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out["block_2"]["cls"], block_2[:, 0], rtol=1e-4, atol=1e-4)
    assert loaded.weights_source == str((folder / "model.safetensors").resolve())
    assert loaded.config["weights_provenance"]["origin"].startswith("Microsoft Health Futures RAD-DINO")


def test_transformers5_in_memory_layout_loads_the_same(published, tmp_path):
    model, folder = published
    in_memory = model.state_dict()
    assert "encoder.layer.0.attention.q_proj.weight" in in_memory
    path = save_state_dict(in_memory, tmp_path / "v5.safetensors")
    a = load_backbone("rad_dino", img_size=SIZE, weights=path, n_last=1, model_overrides=TINY["rad_dino"])
    b = load_backbone("rad_dino", img_size=SIZE, weights=folder, n_last=1, model_overrides=TINY["rad_dino"])
    assert all(torch.equal(a.trunk.state_dict()[k], v) for k, v in b.trunk.state_dict().items())


def test_save_load_bit_identical(tmp_path):
    assert roundtrip_is_identical("rad_dino", tmp_path, 28, TINY["rad_dino"])


def test_wrong_checkpoint_fails_naming_the_tensor(published, tmp_path):
    _, folder = published
    state = load_file(str(folder / "model.safetensors"))
    extra = {**state, "encoder.layer.0.attention.attention.rotary.weight": torch.zeros(2)}
    with pytest.raises(WeightsError, match="'encoder.layer.0.attention.attention.rotary.weight' is not part of"):
        load_backbone("rad_dino", img_size=SIZE, weights=save_state_dict(extra, tmp_path / "x.safetensors"),
                      model_overrides=TINY["rad_dino"])
    no_key = {k: v for k, v in state.items() if k != "encoder.layer.2.attention.attention.key.bias"}
    with pytest.raises(WeightsError, match=r"'blocks.2.attn.qkv.bias' has \['q', 'v'\] but not \['k'\]"):
        load_backbone("rad_dino", img_size=SIZE, weights=save_state_dict(no_key, tmp_path / "k.safetensors"),
                      model_overrides=TINY["rad_dino"])
    with pytest.raises(WeightsError, match=r"'cls_token' has shape \(1, 1, 64\) in the file, the model expects \(1, 1, 768\)"):
        load_backbone("rad_dino", img_size=SIZE, weights=folder)  # a tiny checkpoint for the real ViT-B


def test_snapshot_preprocessing_config_must_agree_with_the_mean_std(published, tmp_path):
    import shutil

    _, folder = published
    snapshot = tmp_path / "snapshot"
    shutil.copytree(folder, snapshot)
    processor = transformers.BitImageProcessor(image_mean=list(RAD_DINO_MEAN), image_std=list(RAD_DINO_STD),
                                               crop_size={"height": 518, "width": 518})
    processor.save_pretrained(snapshot)  # preprocessor_config.json as the HF repo has it
    assert load_backbone("rad_dino", img_size=SIZE, weights=snapshot, n_last=1,
                         model_overrides=TINY["rad_dino"]).weights_hash != "random-init"
    transformers.BitImageProcessor(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(snapshot)
    with pytest.raises(WeightsError, match=r"preprocessor_config.json says mean \[0.485, 0.456, 0.406\]"):
        load_backbone("rad_dino", img_size=SIZE, weights=snapshot, n_last=1, model_overrides=TINY["rad_dino"])

"""featx.backbones.loader: the load_backbone contract end to end, on tiny random models."""

from __future__ import annotations

import json
import socket

import pytest
import torch

from featx.backbones import (
    BackboneError,
    LoadedBackbone,
    WeightsError,
    describe_backbone,
    load_backbone,
    save_weights,
)
from featx.backbones import registry as registry_module
from featx.backbones.weights import featx_weights_dir, save_state_dict, sha256_file

from .conftest import TINY, TINY_VIT, images


def _load(name="dinov2_vits14", size=56, **kw):
    kw.setdefault("random_init", True)
    kw.setdefault("model_overrides", TINY[name])
    return load_backbone(name, img_size=size, **kw)


def _equal_outputs(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[layer].keys() == b[layer].keys() and all(torch.equal(a[layer][k], b[layer][k]) for k in a[layer])
        for layer in a
    )


def test_contract_fields_and_frozen_model():
    loaded = _load(patch_tokens=True)
    assert isinstance(loaded, LoadedBackbone)
    assert loaded.weights_hash == "random-init" and loaded.weights_source == "random-init" and loaded.random_init
    assert loaded.layer_names == ["block_0", "block_1", "block_2", "block_3"]
    assert loaded.feature_dims == dict.fromkeys(loaded.layer_names, 64)
    assert loaded.img_size == 56
    assert not loaded.model.training and not loaded.model.trunk.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    config = loaded.config
    json.dumps(config)  # JSON-able: it goes into the cache key
    assert config["model_overrides"] == TINY_VIT and config["seed"] == 0 and config["random_init"] is True
    assert config["layers"] == loaded.layer_names and config["final_norm"] == "per_block"
    assert config["patch_grid"] == [4, 4]
    out = loaded.model(images(56))
    assert list(out) == loaded.layer_names
    assert out["block_3"]["patch"].shape == (2, 4, 4, 64)
    assert out["block_3"]["cls"].dtype == torch.float32
    assert not out["block_3"]["cls"].requires_grad


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = _load(seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)  # the caller's RNG stream is untouched
    b = _load(seed=7)
    c = _load(seed=8)
    x = images(56)
    assert _equal_outputs(a.model(x), b.model(x))
    assert not torch.equal(a.model(x)["block_3"]["cls"], c.model(x)["block_3"]["cls"])
    assert a.config != c.config  # the seed is part of what defines random features


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_saved_then_loaded_weights_are_bit_identical(tmp_path, suffix):
    original = _load(patch_tokens=True, seed=3)
    path = save_weights(original, tmp_path / f"tiny{suffix}")
    reloaded = load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY_VIT, patch_tokens=True)
    again = load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY_VIT, patch_tokens=True)
    x = images(56)
    assert _equal_outputs(original.model(x), reloaded.model(x))
    assert not reloaded.random_init
    assert reloaded.weights_hash == again.weights_hash == sha256_file(path)
    assert reloaded.weights_source == str(path.resolve())
    assert reloaded.config["seed"] is None and reloaded.config["random_init"] is False


def test_weights_saved_from_wrapper_state_dict_also_load(tmp_path):
    original = _load(seed=4)
    path = save_state_dict(original.model.state_dict(), tmp_path / "wrapped.safetensors")  # keys start "trunk."
    reloaded = load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY_VIT)
    x = images(56)
    assert _equal_outputs(original.model(x), reloaded.model(x))


def test_other_architecture_fails_loudly_before_any_model_is_materialised(tmp_path, monkeypatch):
    other = load_backbone("dinov2_vits14", img_size=56, random_init=True,
                          model_overrides={"depth": 4, "embed_dim": 96, "num_heads": 2})
    path = save_weights(other, tmp_path / "wide.safetensors")

    built_devices = []
    definition = registry_module.get_backbone_def("dinov2_vits14")
    original_build = type(definition).build

    def spy(self, img_size, overrides):
        model = original_build(self, img_size, overrides)
        built_devices.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(type(definition), "build", spy)
    with pytest.raises(WeightsError) as err:
        load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY_VIT)
    msg = str(err.value)
    assert str(path) in msg
    assert "first mismatching tensor 'cls_token'" in msg and "(1, 1, 96)" in msg and "(1, 1, 64)" in msg
    assert "No model was loaded" in msg
    assert built_devices == ["meta"]  # only the shape-only model ever existed


def test_other_family_checkpoint_fails(tmp_path):
    cnn = load_backbone("resnet152", img_size=64, random_init=True, model_overrides=TINY["resnet152"])
    path = save_weights(cnn, tmp_path / "resnet.pth")
    with pytest.raises(WeightsError, match=r"resnet.pth.*first mismatching tensor 'cls_token'.*missing"):
        load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY_VIT)


def test_truncated_weights_file_fails_clearly(tmp_path):
    path = save_weights(_load(), tmp_path / "tiny.safetensors")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        load_backbone("dinov2_vits14", img_size=56, weights=path, model_overrides=TINY_VIT)


@pytest.mark.parametrize("name", ["dinov2_vitl14", "clip_vitl14", "msn_vitl16", "resnet152"])
def test_absent_pretrained_weights_fail_fast_saying_where(name, monkeypatch):
    tried = []  # fast means: no network attempt (a hub download retries for ~45 s offline)

    def no_network(sock, address):
        tried.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(WeightsError) as err:
        load_backbone(name, img_size=224)
    assert tried == []
    msg = str(err.value)
    assert "looked (offline)" in msg and str(featx_weights_dir()) in msg and "--weights FILE" in msg


def test_pretrained_found_in_featx_folder_is_used(tmp_path):
    # a weights file for the default (un-overridden) architecture sitting in featx's folder
    full = load_backbone("vit_tiny_patch16_224", img_size=32, random_init=True, n_last=1)
    target = featx_weights_dir() / "vit_tiny_patch16_224.safetensors"
    save_weights(full, target)
    found = load_backbone("vit_tiny_patch16_224", img_size=32, n_last=1)
    assert found.weights_source == str(target.resolve()) and not found.random_init
    x = images(32)
    assert _equal_outputs(full.model(x), found.model(x))


def test_bad_requests_are_refused():
    with pytest.raises(BackboneError, match="random_init"):
        load_backbone("dinov2_vits14", img_size=56, model_overrides=TINY_VIT)  # overrides need random/file
    with pytest.raises(BackboneError, match="not a multiple of the patch size 14"):
        _load(size=50)
    with pytest.raises(BackboneError, match="only 4 blocks"):
        _load(n_last=5)
    with pytest.raises(BackboneError, match="img_size"):
        _load(model_overrides={**TINY_VIT, "img_size": 28})
    with pytest.raises(BackboneError, match="not both"):
        load_backbone("dinov2_vits14", img_size=56, weights="x.pth", random_init=True)
    with pytest.raises(BackboneError, match="bad model override"):
        _load(model_overrides={"no_such_arg": 1})


def test_bf16_autocast_and_inference_mode():
    loaded = _load(patch_tokens=True)
    x = images(56)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
        out = loaded.model(x)
    ref = loaded.model(x)["block_3"]["cls"]
    got = out["block_3"]["cls"]
    assert got.dtype in (torch.bfloat16, torch.float32)  # LayerNorm runs in fp32 under autocast
    assert torch.isfinite(got).all()
    assert torch.allclose(got.float(), ref, atol=0.1, rtol=0.1)
    assert not torch.equal(got.float(), ref)  # the blocks did run in bf16
    assert out["block_3"]["patch"].shape == (2, 4, 4, 64)


def test_describe_backbone_is_complete_without_weights():
    info = describe_backbone("dinov2_vitl14", sizes=(224, 448))
    assert info["feature_dim"] == 1024 and info["layers"] == ["block_20", "block_21", "block_22", "block_23"]
    assert info["patch_grid"] == {"224": [16, 16], "448": [32, 32]}
    assert 300 < info["params_m"] < 310 and info["weights_found"] is None


def test_weights_folder_like_a_hf_snapshot(tmp_path):
    original = _load(seed=5)
    save_weights(original, tmp_path / "snapshot" / "model.safetensors")
    loaded = load_backbone("dinov2_vits14", img_size=56, weights=tmp_path / "snapshot", model_overrides=TINY_VIT)
    assert loaded.weights_source == str((tmp_path / "snapshot" / "model.safetensors").resolve())
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match="holds none of"):
        load_backbone("dinov2_vits14", img_size=56, weights=tmp_path / "empty", model_overrides=TINY_VIT)

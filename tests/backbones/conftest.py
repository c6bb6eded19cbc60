"""Shared fixtures for the backbone tests: tiny architectures and isolated (empty) weight caches."""

from __future__ import annotations

import pytest
import torch

TINY_VIT = {"depth": 4, "embed_dim": 64, "num_heads": 2}
TINY_SAM = {"depth": 4, "embed_dim": 64, "num_heads": 2, "global_attn_indexes": [1, 3], "window_size": 2}
TINY_CLIP = {"layers": 4, "width": 64, "head_width": 32, "embed_dim": 32}
TINY = {
    "dinov2_vits14": TINY_VIT,
    "dinov2_vits14_reg4": TINY_VIT,
    "dinov2_vitg14": {"depth": 4, "embed_dim": 64, "num_heads": 2, "mlp_ratio": 4.0},
    "mae_vitl16": TINY_VIT,
    "msn_vitl16": TINY_VIT,
    "vit_large_patch16_in21k": TINY_VIT,
    "vit_small_patch16_224": TINY_VIT,
    "sam_vitl16": TINY_SAM,
    "clip_vitl14": TINY_CLIP,
    "openclip_vith14": TINY_CLIP,
    "resnet152": {"layers": [1, 1, 1, 1]},
    "densenet201": {"block_config": [1, 1, 1, 1], "growth_rate": 8},
    "vgg19": {"mlp_ratio": 1 / 64},
    "dinov3_vits16": TINY_VIT,
    "dinov3_vith16plus": TINY_VIT,
    "dinov3_convnext_tiny": {"depths": [1, 1, 1, 1], "dims": [16, 32, 64, 128]},
    "siglip2_vitb16_256": TINY_VIT,
    "siglip2_so400m14_224": TINY_VIT,
    "rad_dino": TINY_VIT,
    "biomedclip_vitb16": TINY_VIT,
}


def roundtrip_is_identical(name: str, tmp_path, size: int, overrides: dict, n_last: int = 2) -> bool:
    """Random weights -> save_weights -> load_backbone(weights=...): are all features bit-identical?"""
    from featx.backbones import load_backbone, save_weights

    first = load_backbone(name, img_size=size, random_init=True, n_last=n_last, patch_tokens=True,
                          model_overrides=overrides, seed=3)
    path = save_weights(first, tmp_path / f"{name}.safetensors")
    second = load_backbone(name, img_size=size, weights=path, n_last=n_last, patch_tokens=True,
                           model_overrides=overrides)
    x = images(size)
    a, b = first.model(x), second.model(x)
    return second.weights_hash != "random-init" and all(
        torch.equal(a[layer][kind], b[layer][kind]) for layer in a for kind in a[layer]
    )


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    """Point every weights cache featx reads at empty folders under tmp_path."""
    root = tmp_path / "caches"
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "xdg"))
    monkeypatch.setenv("HF_HOME", str(root / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(root / "torch"))
    monkeypatch.setenv("FEATX_WEIGHTS_DIR", str(root / "featx"))
    monkeypatch.delenv("FEATX_ALLOW_PICKLE", raising=False)
    return root


def images(size: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=generator)


def shapes(out: dict) -> dict:
    return {layer: {kind: tuple(t.shape) for kind, t in kinds.items()} for layer, kinds in out.items()}

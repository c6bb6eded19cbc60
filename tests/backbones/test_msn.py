"""featx.backbones.msn: the published MSN checkpoint format maps completely onto timm's ViT."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import WeightsError, load_backbone
from featx.backbones.msn import MSN_KEY_MAP, convert_msn_state_dict, map_msn_key

from .conftest import TINY, images

DIM, DEPTH, HEADS, PATCH, GRID, HIDDEN, OUT = 64, 4, 2, 16, 2, 32, 16


def published_target_encoder(dim=DIM, depth=DEPTH, grid=GRID, use_bn=True, seed=0) -> dict[str, torch.Tensor]:
    """A ``target_encoder`` state dict with facebookresearch/msn's names and shapes (src/deit.py
    VisionTransformer + the projection head ``fc`` of msn_train.init_model), DDP ``module.`` prefix."""
    g = torch.Generator().manual_seed(seed)

    def t(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    sd = {
        "cls_token": t(1, 1, dim),
        "pos_embed": t(1, grid * grid + 1, dim),
        "patch_embed.proj.weight": t(dim, 3, PATCH, PATCH),
        "patch_embed.proj.bias": t(dim),
    }
    for i in range(depth):
        sd.update({
            f"blocks.{i}.norm1.weight": 1 + t(dim), f"blocks.{i}.norm1.bias": t(dim),
            f"blocks.{i}.attn.qkv.weight": t(3 * dim, dim), f"blocks.{i}.attn.qkv.bias": t(3 * dim),
            f"blocks.{i}.attn.proj.weight": t(dim, dim), f"blocks.{i}.attn.proj.bias": t(dim),
            f"blocks.{i}.norm2.weight": 1 + t(dim), f"blocks.{i}.norm2.bias": t(dim),
            f"blocks.{i}.mlp.fc1.weight": t(4 * dim, dim), f"blocks.{i}.mlp.fc1.bias": t(4 * dim),
            f"blocks.{i}.mlp.fc2.weight": t(dim, 4 * dim), f"blocks.{i}.mlp.fc2.bias": t(dim),
        })
    sd.update({"norm.weight": 1 + t(dim), "norm.bias": t(dim)})
    # projection head: fc1 (+bn1) gelu fc2 (+bn2) gelu fc3
    sd.update({"fc.fc1.weight": t(HIDDEN, dim), "fc.fc1.bias": t(HIDDEN),
               "fc.fc2.weight": t(HIDDEN, HIDDEN), "fc.fc2.bias": t(HIDDEN),
               "fc.fc3.weight": t(OUT, HIDDEN), "fc.fc3.bias": t(OUT)})
    if use_bn:
        for bn in ("bn1", "bn2"):
            sd.update({f"fc.{bn}.weight": 1 + t(HIDDEN), f"fc.{bn}.bias": t(HIDDEN),
                       f"fc.{bn}.running_mean": t(HIDDEN), f"fc.{bn}.running_var": 1 + t(HIDDEN).abs(),
                       f"fc.{bn}.num_batches_tracked": torch.tensor(1000)})
    return {"module." + k: v for k, v in sd.items()}


def published_checkpoint(**kw) -> dict:
    target = published_target_encoder(**kw)
    online = {k: v + 1 for k, v in published_target_encoder(seed=9).items()}
    return {"encoder": online, "target_encoder": target, "prototypes": torch.randn(8, OUT),
            "opt": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1], "WD_exclude": True}]},
            "epoch": 600, "loss": 2.5, "batch_size": 1024, "world_size": 32, "lr": 0.001, "temperature": 0.1}


def test_mapping_covers_every_published_tensor():
    published = published_target_encoder()
    model = load_backbone("msn_vitl16", img_size=32, random_init=True, model_overrides=TINY["msn_vitl16"])
    timm_sd = model.model.trunk.state_dict()
    mapped, dropped = {}, []
    for key, value in published.items():
        target = map_msn_key(key[len("module."):])  # raises KeyError for any tensor the mapping misses
        if target is None:
            dropped.append(key)
        else:
            mapped[target] = value
    assert set(mapped) == set(timm_sd)  # every timm tensor is filled, nothing left over
    assert all(mapped[k].shape == timm_sd[k].shape for k in timm_sd)
    assert all(k.startswith("module.fc.") for k in dropped) and len(dropped) == 16  # projection head only
    assert len(published) == len(mapped) + len(dropped)
    assert len(MSN_KEY_MAP) >= 8


def test_mapping_at_full_vit_l_names():
    model = load_backbone("msn_vitl16", img_size=224, random_init=True, n_last=1,
                          model_overrides={"embed_dim": 64, "num_heads": 2})  # 24 blocks, as ViT-L/16
    published = convert_msn_state_dict(published_target_encoder(depth=24, grid=14, use_bn=False))
    assert set(published) == set(model.model.trunk.state_dict())
    assert model.layer_names == ["block_23"]


def test_published_checkpoint_loads_and_features_are_msn_features(tmp_path):
    path = tmp_path / "vitl16_600ep.pth.tar"
    checkpoint = published_checkpoint()
    torch.save(checkpoint, path)
    loaded = load_backbone("msn_vitl16", img_size=32, weights=path, model_overrides=TINY["msn_vitl16"], patch_tokens=True)
    trunk = loaded.model.trunk
    target = checkpoint["target_encoder"]
    # the target encoder (not the online one) was loaded
    torch.testing.assert_close(trunk.blocks[2].attn.qkv.weight, target["module.blocks.2.attn.qkv.weight"])
    torch.testing.assert_close(trunk.norm.bias, target["module.norm.bias"])
    x = images(32)
    out = loaded.model(x)
    # MSN's forward_return_n_last_blocks: self.norm(x)[:, 0] per block; avgpool of normed last block
    with torch.inference_mode():
        tokens = trunk.forward_features(x)
    torch.testing.assert_close(out["block_3"]["cls"], tokens[:, 0])
    torch.testing.assert_close(out["block_3"]["pooled"], tokens[:, 1:].mean(1))
    assert out["block_3"]["patch"].shape == (2, 2, 2, 64)


def test_published_checkpoint_at_other_resolution(tmp_path):
    path = tmp_path / "msn.pth.tar"
    torch.save(published_checkpoint(), path)  # 2x2 grid "native"
    loaded = load_backbone("msn_vitl16", img_size=64, weights=path, model_overrides=TINY["msn_vitl16"], patch_tokens=True)
    out = loaded.model(images(64))
    assert out["block_3"]["patch"].shape == (2, 4, 4, 64)
    assert loaded.model.trunk.pos_embed.shape == (1, 17, 64)


def test_unknown_tensor_in_published_checkpoint_is_an_error(tmp_path):
    sd = published_target_encoder()
    sd["module.blocks.0.attn.rel_pos"] = torch.zeros(3)
    with pytest.raises(WeightsError, match="blocks.0.attn.rel_pos"):
        convert_msn_state_dict(sd)
    path = tmp_path / "bad.pth"
    torch.save({"target_encoder": sd}, path)
    with pytest.raises(WeightsError, match="blocks.0.attn.rel_pos"):
        load_backbone("msn_vitl16", img_size=32, weights=path, model_overrides=TINY["msn_vitl16"])


def test_shape_mismatch_in_published_checkpoint_names_tensor(tmp_path):
    path = tmp_path / "wide.pth.tar"
    torch.save(published_checkpoint(dim=96), path)
    with pytest.raises(WeightsError, match="first mismatching tensor 'cls_token'"):
        load_backbone("msn_vitl16", img_size=32, weights=path, model_overrides=TINY["msn_vitl16"])

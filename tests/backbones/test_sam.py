"""featx.backbones.sam: SAM image encoder without a CLS token, grids, original checkpoints."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import load_backbone, save_weights
from featx.backbones.sam import resize_rel_pos

from .conftest import TINY, images, shapes


@pytest.mark.parametrize("size,grid", [(32, 2), (64, 4)])
def test_feature_shapes_at_two_resolutions(size, grid):
    loaded = load_backbone("sam_vitl16", img_size=size, random_init=True, model_overrides=TINY["sam_vitl16"],
                           patch_tokens=True)
    out = loaded.model(images(size))
    expected = {"cls": (2, 64), "pooled": (2, 64), "patch": (2, grid, grid, 64)}
    assert shapes(out) == {f"block_{i}": expected for i in range(4)}
    assert not loaded.spec.has_cls_token and loaded.spec.native_size == 1024
    assert loaded.config["cls_policy"] == "mean_patch" and loaded.config["final_norm"] == "none"


def test_cls_is_mean_of_block_tokens_without_neck():
    loaded = load_backbone("sam_vitl16", img_size=64, random_init=True, model_overrides=TINY["sam_vitl16"],
                           patch_tokens=True, n_last=1)
    trunk = loaded.model.trunk
    x = images(64)
    with torch.inference_mode():
        h = trunk.patch_embed(x) + trunk.pos_embed
        h = trunk.blocks(h)  # (B, h, w, D): the neck (1024 -> 256 convs) is not applied
        out = loaded.model(x)["block_3"]
    torch.testing.assert_close(out["patch"], h)
    torch.testing.assert_close(out["cls"], h.mean(dim=(1, 2)))
    torch.testing.assert_close(out["pooled"], out["cls"])


def test_original_sam_checkpoint_and_other_resolution(tmp_path):
    native = load_backbone("sam_vitl16", img_size=64, random_init=True, model_overrides=TINY["sam_vitl16"])
    sam_format = {"image_encoder." + k.replace("mlp.fc", "mlp.lin"): v for k, v in native.model.trunk.state_dict().items()}
    sam_format["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = torch.zeros(2, 128)
    sam_format["mask_decoder.iou_token.weight"] = torch.zeros(1, 256)
    path = tmp_path / "sam_vit_l_0b3195.pth"
    torch.save(sam_format, path)
    same = load_backbone("sam_vitl16", img_size=64, weights=path, model_overrides=TINY["sam_vitl16"])
    x = images(64)
    torch.testing.assert_close(same.model(x)["block_3"]["cls"], native.model(x)["block_3"]["cls"])
    # at half the resolution, absolute and global relative position tables are resized
    small = load_backbone("sam_vitl16", img_size=32, weights=path, model_overrides=TINY["sam_vitl16"], patch_tokens=True)
    trunk = small.model.trunk
    assert trunk.pos_embed.shape == (1, 2, 2, 64)
    assert trunk.blocks[1].attn.rel_pos_h.shape[0] == 2 * 2 - 1  # global block
    assert small.model(images(32))["block_3"]["patch"].shape == (2, 2, 2, 64)


def test_resize_rel_pos_matches_sam_rule():
    table = torch.randn(7, 4)
    assert resize_rel_pos(table, 7) is table
    out = resize_rel_pos(table, 3)
    ref = torch.nn.functional.interpolate(table.reshape(1, 7, -1).permute(0, 2, 1), size=3, mode="linear")
    torch.testing.assert_close(out, ref.reshape(-1, 3).permute(1, 0))


def test_saved_weights_roundtrip(tmp_path):
    a = load_backbone("sam_vitl16", img_size=32, random_init=True, model_overrides=TINY["sam_vitl16"])
    path = save_weights(a, tmp_path / "sam.safetensors")
    b = load_backbone("sam_vitl16", img_size=32, weights=path, model_overrides=TINY["sam_vitl16"])
    x = images(32)
    assert torch.equal(a.model(x)["block_3"]["cls"], b.model(x)["block_3"]["cls"])

"""3D encoders: registered, tiny random builds, published checkpoint layouts load with every tensor placed."""

import pytest
import torch

from featx.backbones import list_backbones, load_backbone
from featx.backbones.weights import WeightsError
from tests.volume_data import TINY_SEGRES, TINY_SWIN


def _swinunetr(feature_size=12):
    from monai.networks.nets import SwinUNETR

    return SwinUNETR(in_channels=1, out_channels=2, feature_size=feature_size, depths=(1, 1, 1, 1),
                     num_heads=(1, 1, 1, 1), window_size=4, spatial_dims=3)


def test_registered_with_stage_maps_channels_last():
    assert {"swinunetr3d", "segresnet3d"} <= set(list_backbones())
    swin = load_backbone("swinunetr3d", img_size=32, random_init=True, n_last=2, patch_tokens=True,
                         model_overrides=TINY_SWIN)
    out = swin.model(torch.randn(2, 1, 32, 32, 32))
    assert swin.layer_names == ["stage_3", "stage_4"] and swin.feature_dims == {"stage_3": 96, "stage_4": 192}
    assert out["stage_3"]["patch"].shape == (2, 2, 2, 2, 96) and out["stage_4"]["pooled"].shape == (2, 192)
    assert torch.allclose(out["stage_3"]["pooled"], out["stage_3"]["patch"].mean(dim=(1, 2, 3)), atol=1e-5)
    seg = load_backbone("segresnet3d", img_size=32, random_init=True, n_last=3, patch_tokens=True,
                        model_overrides=TINY_SEGRES)
    assert [tuple(v["patch"].shape) for v in seg.model(torch.randn(1, 1, 32, 32, 32)).values()] == [
        (1, 32, 32, 32, 4), (1, 16, 16, 16, 8), (1, 8, 8, 8, 16)]


def test_suprem_layout_swinunetr_checkpoint_loads_with_every_tensor_placed(tmp_path):
    torch.manual_seed(1)
    full = _swinunetr()
    # SuPreM: {"net": state dict of Universal_model(backbone=SwinUNETR)} saved from DataParallel
    path = tmp_path / "supervised_suprem_swinunetr.pth"
    torch.save({"net": {f"module.backbone.{k}": v for k, v in full.state_dict().items()}, "epoch": 3}, path)
    loaded = load_backbone("swinunetr3d", img_size=32, weights=path, n_last=2, model_overrides=TINY_SWIN)
    encoder = full.swinViT.state_dict()
    placed = loaded.model.trunk.state_dict()
    assert set(placed) == set(encoder) and all(torch.equal(placed[k], encoder[k]) for k in encoder)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        expected = full.swinViT(x, True)[4].mean(dim=(2, 3, 4))
    assert torch.allclose(loaded.model(x)["stage_4"]["pooled"], expected, atol=1e-5)
    assert loaded.config["arch"]["checkpoint_prefix"] == "swinViT."


def test_a_checkpoint_of_another_size_is_refused_naming_the_first_mismatching_tensor(tmp_path):
    path = tmp_path / "voco.pt"
    torch.save({"state_dict": _swinunetr(feature_size=24).state_dict()}, path)
    with pytest.raises(WeightsError, match=r"first mismatching tensor 'patch_embed.proj.weight' has shape \(24, 1, 2, 2, 2\)"):
        load_backbone("swinunetr3d", img_size=32, weights=path, model_overrides=TINY_SWIN)
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, path)
    with pytest.raises(WeightsError, match="no tensor under 'swinViT.'"):
        load_backbone("swinunetr3d", img_size=32, weights=path, model_overrides=TINY_SWIN)


def test_monai_segresnet_checkpoint_loads_its_encoder(tmp_path):
    from monai.networks.nets import SegResNet

    full = SegResNet(spatial_dims=3, init_filters=4, in_channels=1, out_channels=3, blocks_down=(1, 1, 1),
                     blocks_up=(1, 1), norm=("GROUP", {"num_groups": 4}))
    path = tmp_path / "model.pt"
    torch.save({f"model.{k}": v for k, v in full.state_dict().items()}, path)  # decoder tensors dropped by rule
    loaded = load_backbone("segresnet3d", img_size=32, weights=path, n_last=1, model_overrides=TINY_SEGRES)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        deepest = full.encode(x)[0]
    assert torch.allclose(loaded.model(x)["stage_2"]["pooled"], deepest.mean(dim=(2, 3, 4)), atol=1e-5)

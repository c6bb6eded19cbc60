"""featx.backbones.cnn: DenseNet201, ResNet152, VGG19: penultimate features and stage grids."""

from __future__ import annotations

import pytest
import torch

from featx.backbones import BackboneError, load_backbone, save_weights
from featx.backbones.weights import save_state_dict

from .conftest import TINY, images, shapes

CASES = {
    # name: (pool dim, stage dims of the 3 stages before pool)
    "resnet152": (2048, {"stage_1": 256, "stage_2": 512, "stage_3": 1024}),
    "densenet201": (None, None),  # tiny override changes widths: checked against the model below
    "vgg19": (4096, {"stage_3": 512, "stage_4": 512, "stage_5": 512}),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("size", [64, 128])
def test_feature_shapes_at_two_resolutions(name, size):
    loaded = load_backbone(name, img_size=size, random_init=True, model_overrides=TINY[name], patch_tokens=True)
    out = loaded.model(images(size))
    assert list(out) == loaded.layer_names and loaded.layer_names[-1] == "pool"
    pool_dim, stage_dims = CASES[name]
    if pool_dim:
        assert loaded.feature_dims["pool"] == pool_dim
        assert {k: v for k, v in loaded.feature_dims.items() if k != "pool"} == stage_dims
    for layer, kinds in shapes(out).items():
        dim = loaded.feature_dims[layer]
        assert kinds["cls"] == kinds["pooled"] == (2, dim)
        assert kinds["patch"][0] == 2 and kinds["patch"][-1] == dim
    grid = loaded.config["patch_grid"]
    assert shapes(out)["pool"]["patch"] == (2, grid[0], grid[1], loaded.feature_dims["pool"])
    if name != "vgg19":
        assert grid == [size // 32, size // 32]


@pytest.mark.parametrize("name", list(CASES))
def test_pool_is_the_penultimate_feature(name):
    loaded = load_backbone(name, img_size=64, random_init=True, model_overrides=TINY[name], n_last=1)
    assert loaded.layer_names == ["pool"]
    x = images(64)
    with torch.inference_mode():
        reference = loaded.model.trunk(x)  # num_classes=0: the network's pre-logits vector
    out = loaded.model(x)["pool"]
    torch.testing.assert_close(out["cls"], reference)
    assert set(out) == {"cls", "pooled"}


def test_stage_features_are_global_averages():
    loaded = load_backbone("resnet152", img_size=64, random_init=True, model_overrides=TINY["resnet152"],
                           patch_tokens=True, n_last=2)
    out = loaded.model(images(64))
    assert loaded.layer_names == ["stage_3", "pool"]
    torch.testing.assert_close(out["stage_3"]["cls"], out["stage_3"]["patch"].mean(dim=(1, 2)))
    torch.testing.assert_close(out["pool"]["cls"], out["pool"]["patch"].mean(dim=(1, 2)))


def test_vgg_pool_grid_at_448_style_sizes():
    loaded = load_backbone("vgg19", img_size=448, random_init=True, model_overrides=TINY["vgg19"], n_last=1,
                           patch_tokens=True)
    assert loaded.config["patch_grid"] == [8, 8]  # fc6 is a 7x7 conv over the 14x14 map


def test_torchvision_vgg_checkpoint_converts(tmp_path):
    a = load_backbone("vgg19", img_size=64, random_init=True, model_overrides=TINY["vgg19"], n_last=1)
    sd = a.model.trunk.state_dict()
    hidden = sd["pre_logits.fc1.weight"].shape[0]
    tv = {k: v for k, v in sd.items() if not k.startswith("pre_logits")}
    tv["classifier.0.weight"] = sd["pre_logits.fc1.weight"].reshape(hidden, -1)
    tv["classifier.0.bias"] = sd["pre_logits.fc1.bias"]
    tv["classifier.3.weight"] = sd["pre_logits.fc2.weight"].reshape(4096, hidden)
    tv["classifier.3.bias"] = sd["pre_logits.fc2.bias"]
    tv["classifier.6.weight"] = torch.zeros(1000, 4096)  # the ImageNet classifier: dropped
    tv["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    save_state_dict(tv, path)
    b = load_backbone("vgg19", img_size=64, weights=path, model_overrides=TINY["vgg19"], n_last=1)
    x = images(64)
    torch.testing.assert_close(a.model(x)["pool"]["cls"], b.model(x)["pool"]["cls"])


def test_saved_weights_roundtrip_and_limits(tmp_path):
    a = load_backbone("densenet201", img_size=64, random_init=True, model_overrides=TINY["densenet201"], n_last=5)
    assert a.layer_names == ["stage_0", "stage_1", "stage_2", "stage_3", "pool"]
    path = save_weights(a, tmp_path / "d.safetensors")
    b = load_backbone("densenet201", img_size=64, weights=path, model_overrides=TINY["densenet201"], n_last=5)
    x = images(64)
    assert all(torch.equal(a.model(x)[k]["cls"], b.model(x)[k]["cls"]) for k in a.layer_names)
    with pytest.raises(BackboneError, match="only 5 layers"):
        load_backbone("densenet201", img_size=64, random_init=True, model_overrides=TINY["densenet201"], n_last=6)
    with pytest.raises(BackboneError, match="below 32"):
        load_backbone("resnet152", img_size=16, random_init=True, model_overrides=TINY["resnet152"])

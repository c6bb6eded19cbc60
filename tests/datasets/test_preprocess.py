import numpy as np
import pytest

from featx.datasets.preprocess import PreprocessConfig, resize_mask, scale_intensity, to_model_input


def test_modality_defaults_follow_the_protocol_and_can_be_overridden():
    assert PreprocessConfig.for_modality("ct", 224).intensity == "window"
    assert PreprocessConfig.for_modality("ct", 224).window == (-1024.0, 600.0)
    assert PreprocessConfig.for_modality("mri", 224).percentiles == (5.0, 95.0)
    assert PreprocessConfig.for_modality("xray", 224).intensity == "minmax"
    assert PreprocessConfig.for_modality("ct", 224, window=(-160.0, 240.0)).window == (-160.0, 240.0)
    with pytest.raises(ValueError, match="low must be below high"):
        PreprocessConfig(size=224, window=(10.0, 0.0))


def test_ct_window_clamps_hounsfield_units():
    config = PreprocessConfig.for_modality("ct", 16)
    hu = np.array([[-2000.0, -1024.0, -212.0, 600.0, 3000.0]], np.float32)
    np.testing.assert_allclose(scale_intensity(hu, config), [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-6)


def test_percentile_clip_ignores_outliers():
    config = PreprocessConfig.for_modality("mri", 16)
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    image[0, 0] = 1e6
    scaled = scale_intensity(image, config)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert 0.4 < scaled[5, 0] < 0.6  # the outlier did not squash the range


def test_model_input_is_uint8_three_channels_at_size_for_grey_16bit_and_rgb():
    config = PreprocessConfig(size=32)
    grey16 = np.linspace(0, 65535, 64 * 48, dtype=np.float32).reshape(64, 48)
    out = to_model_input(grey16, config)
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8
    assert (out[0] == out[1]).all() and out.min() < 8 and out.max() > 247  # full range, edges averaged
    rgb = np.zeros((20, 20, 3), np.float32)
    rgb[..., 0] = 255
    out = to_model_input(rgb, config)
    assert out.shape == (3, 32, 32) and out[0].min() == 255 and out[1].max() == 0


def test_constant_image_becomes_zeros_not_nan():
    assert not to_model_input(np.full((8, 8), 7.0, np.float32), PreprocessConfig(size=8)).any()


def test_mask_resize_never_blends_class_ids():
    mask = np.zeros((10, 10), np.uint8)
    mask[:5] = 1
    mask[5:, 5:] = 2
    resized = resize_mask(mask, 23)
    assert resized.shape == (23, 23) and set(np.unique(resized)) == {0, 1, 2}


def test_config_dict_is_json_ready_and_complete():
    data = PreprocessConfig.for_modality("ct", 224).to_dict()
    assert data == {"size": 224, "intensity": "window", "window": [-1024.0, 600.0], "percentiles": [5.0, 95.0],
                    "resample": "bilinear"}

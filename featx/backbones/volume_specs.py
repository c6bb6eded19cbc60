"""The 3D encoders' specs and listing facts, as data (no torch): featx.backbones.volumetric builds them."""

from __future__ import annotations

from featx.backbones.spec import BackboneSpec

IDENTITY_MEAN = (0.0, 0.0, 0.0)
IDENTITY_STD = (1.0, 1.0, 1.0)

SWINUNETR3D = BackboneSpec(
    name="swinunetr3d", family="volume", mean=IDENTITY_MEAN, std=IDENTITY_STD, patch_size=2, native_size=96,
    has_cls_token=False,
    description="MONAI SwinUNETR Swin-ViT encoder (3D; SuPreM / VoCo / MONAI SwinUNETR checkpoints)",
    provenance="Hatamizadeh et al. 2022 (SwinUNETR); weights: SuPreM (Li et al. 2024), VoCo (Wu et al. 2024)",
)

SEGRESNET3D = BackboneSpec(
    name="segresnet3d", family="volume", mean=IDENTITY_MEAN, std=IDENTITY_STD, patch_size=None, native_size=96,
    has_cls_token=False, description="MONAI SegResNet encoder (3D; MONAI bundle / Auto3DSeg checkpoints)",
    provenance="Myronenko 2018 (SegResNet), MONAI",
)

#: what ``featx backbones`` shows for them: the deepest stage's width at the default settings, and the stages
VOLUME_FACTS = {
    "swinunetr3d": {"spec": SWINUNETR3D, "feature_dim": 48 * 16, "layers": [f"stage_{i}" for i in range(5)]},
    "segresnet3d": {"spec": SEGRESNET3D, "feature_dim": 16 * 8, "layers": [f"stage_{i}" for i in range(4)]},
}

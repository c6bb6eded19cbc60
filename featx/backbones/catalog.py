"""The registered backbones as data: one table per family, from which the registry's entries are made.

Each family's rows hold what differs between its members (timm architecture, label, weights files);
the family's function below turns a row into a :class:`~featx.backbones.spec.BackboneEntry` (spec,
definition class, weights locations, listing facts). Nothing here imports torch: the definition
class named by an entry is imported only when that backbone is built, so ``featx backbones`` and a
name check are instant. :data:`SHAPES` are the built networks' facts the listing shows, measured on
the ``meta`` device (tests/backbones/test_catalog.py re-measures every one of them).
"""

from __future__ import annotations

from featx.backbones.locations import WeightCandidate, hf_candidates, timm_candidates
from featx.backbones.spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INCEPTION_MEAN,
    INCEPTION_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    BackboneEntry,
    BackboneShape,
    BackboneSpec,
)

__all__ = ["ENTRIES", "SHAPES"]

# -- DINOv2 (featx.backbones.dinov2) ------------------------------------------------------------
#: DINOv2's ``interpolate_pos_encoding``: bicubic, no antialias, ``scale_factor = (g + 0.1) / 37``
DINOV2_POS_RESIZE = {"mode": "bicubic", "antialias": False, "offset": 0.1}
#: featx name -> (timm arch, label, ~params in M); tagged lvd142m, torch hub file ``<name>_pretrain.pth``
DINOV2_VITS = {
    "dinov2_vits14": ("vit_small_patch14_dinov2", "ViT-S/14", 21),
    "dinov2_vits14_reg4": ("vit_small_patch14_reg4_dinov2", "ViT-S/14 + 4 registers", 21),
    "dinov2_vitb14": ("vit_base_patch14_dinov2", "ViT-B/14", 86),
    "dinov2_vitb14_reg4": ("vit_base_patch14_reg4_dinov2", "ViT-B/14 + 4 registers", 86),
    "dinov2_vitl14": ("vit_large_patch14_dinov2", "ViT-L/14", 300),
    "dinov2_vitl14_reg4": ("vit_large_patch14_reg4_dinov2", "ViT-L/14 + 4 registers", 300),
    "dinov2_vitg14": ("vit_giant_patch14_dinov2", "ViT-g/14", 1100),
    "dinov2_vitg14_reg4": ("vit_giant_patch14_reg4_dinov2", "ViT-g/14 + 4 registers", 1100),
}

# -- DINOv3 (featx.backbones.dinov3) ------------------------------------------------------------
DINOV3_PROVENANCE = "Meta DINOv3 (Siméoni et al. 2025), LVD-1689M, via timm/{repo}"
DINOV3_LICENCE = "dinov3-license"
#: featx name -> (timm arch, label, ~params in M); all tagged lvd1689m
DINOV3_VITS = {
    "dinov3_vits16": ("vit_small_patch16_dinov3", "ViT-S/16", 21),
    "dinov3_vits16plus": ("vit_small_plus_patch16_dinov3", "ViT-S+/16", 29),
    "dinov3_vitb16": ("vit_base_patch16_dinov3", "ViT-B/16", 86),
    "dinov3_vitl16": ("vit_large_patch16_dinov3", "ViT-L/16", 300),
    "dinov3_vith16plus": ("vit_huge_plus_patch16_dinov3", "ViT-H+/16", 840),
    "dinov3_vit7b16": ("vit_7b_patch16_dinov3", "ViT-7B/16", 6700),
}
#: featx name -> timm ConvNeXt arch (tag dinov3_lvd1689m)
DINOV3_CONVNEXTS = {
    "dinov3_convnext_tiny": "convnext_tiny",
    "dinov3_convnext_small": "convnext_small",
    "dinov3_convnext_base": "convnext_base",
    "dinov3_convnext_large": "convnext_large",
}

# -- SigLIP 2 (featx.backbones.siglip2) ---------------------------------------------------------
#: featx name -> (timm arch, label, patch, native size, ~params in M); all tagged v2_webli
SIGLIP2_TOWERS = {
    "siglip2_vitb16_256": ("vit_base_patch16_siglip_256", "ViT-B/16", 16, 256, 93),
    "siglip2_vitl16_256": ("vit_large_patch16_siglip_256", "ViT-L/16", 16, 256, 316),
    "siglip2_so400m14_224": ("vit_so400m_patch14_siglip_224", "So400m/14", 14, 224, 428),
    "siglip2_so400m16_256": ("vit_so400m_patch16_siglip_256", "So400m/16", 16, 256, 428),
    "siglip2_vitg16_256": ("vit_giantopt_patch16_siglip_256", "g-opt/16", 16, 256, 1130),
}

# -- CLIP / OpenCLIP (featx.backbones.openclip) -------------------------------------------------
OPEN_CLIP_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
#: featx name -> (open_clip arch, QuickGELU, HF repository, ~/.cache/clip file, description)
OPEN_CLIP_TOWERS = {
    "clip_vitl14": ("ViT-L-14", True, "timm/vit_large_patch14_clip_224.openai", "ViT-L-14.pt",
                    "CLIP ViT-L/14 image tower, OpenAI WIT-400M (open_clip ViT-L-14, QuickGELU)"),
    "openclip_vith14": ("ViT-H-14", False, "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", None,
                        "OpenCLIP ViT-H/14 image tower, LAION-2B (laion2b_s32b_b79k)"),
}

# -- supervised ImageNet-1k CNNs (featx.backbones.cnn) ------------------------------------------
#: featx name (= timm arch, tag tv_in1k) -> (description, torchvision files in the torch hub folder)
CNNS = {
    "densenet201": ("DenseNet201, ImageNet-1k supervised (torchvision weights)", ("densenet201-c1103571.pth",)),
    "resnet152": ("ResNet152, ImageNet-1k supervised (torchvision V1 weights)",
                  ("resnet152-394f9c45.pth", "resnet152-b121ed2d.pth")),
    "vgg19": ("VGG19, ImageNet-1k supervised (torchvision weights)", ("vgg19-dcbb9e9d.pth",)),
}

# -- the medical ViTs (featx.backbones.rad_dino, featx.backbones.biomedclip) --------------------
#: RAD-DINO's preprocessor_config.json (BitImageProcessor): image_mean / image_std, same on R, G, B.
#: Checked against the snapshot's own file whenever it sits next to the weights.
RAD_DINO_MEAN = (0.5307, 0.5307, 0.5307)
RAD_DINO_STD = (0.2583, 0.2583, 0.2583)
RAD_DINO_HF_REPO = "microsoft/rad-dino"
BIOMEDCLIP_HF_REPO = "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"

# -- the built networks' facts, as measured on the meta device ----------------------------------
#: name -> (params (c0, c1, c2) in the grid side, deepest width, returnable layers, cls policy
#: [, CNN stride, head kernel]); see :class:`~featx.backbones.spec.BackboneShape`
SHAPES: dict[str, BackboneShape] = {
    "biomedclip_vitb16": BackboneShape((85648128, 0, 768), 768, 12, "cls_token"),
    "clip_vitl14": BackboneShape((303704064, 0, 1024), 1024, 24, "cls_token"),
    "densenet201": BackboneShape((18092928, 0, 0), 1920, 5, "global_avg_pool", 32, 1),
    "dinov2_vitb14": BackboneShape((85528320, 0, 768), 768, 12, "cls_token"),
    "dinov2_vitb14_reg4": BackboneShape((85530624, 0, 768), 768, 12, "cls_token"),
    "dinov2_vitg14": BackboneShape((1134376448, 0, 1536), 1536, 40, "cls_token"),
    "dinov2_vitg14_reg4": BackboneShape((1134381056, 0, 1536), 1536, 40, "cls_token"),
    "dinov2_vitl14": BackboneShape((302965760, 0, 1024), 1024, 24, "cls_token"),
    "dinov2_vitl14_reg4": BackboneShape((302968832, 0, 1024), 1024, 24, "cls_token"),
    "dinov2_vits14": BackboneShape((21530496, 0, 384), 384, 12, "cls_token"),
    "dinov2_vits14_reg4": BackboneShape((21531648, 0, 384), 384, 12, "cls_token"),
    "dinov3_convnext_base": BackboneShape((87566464, 0, 0), 1024, 4, "global_avg_pool", 32, 1),
    "dinov3_convnext_large": BackboneShape((196230336, 0, 0), 1536, 4, "global_avg_pool", 32, 1),
    "dinov3_convnext_small": BackboneShape((49454688, 0, 0), 768, 4, "global_avg_pool", 32, 1),
    "dinov3_convnext_tiny": BackboneShape((27820128, 0, 0), 768, 4, "global_avg_pool", 32, 1),
    "dinov3_vit7b16": BackboneShape((6716030976, 0, 0), 4096, 40, "cls_token"),
    "dinov3_vitb16": BackboneShape((85641216, 0, 0), 768, 12, "cls_token"),
    "dinov3_vith16plus": BackboneShape((840509440, 0, 0), 1280, 32, "cls_token"),
    "dinov3_vitl16": BackboneShape((303079424, 0, 0), 1024, 24, "cls_token"),
    "dinov3_vits16": BackboneShape((21586944, 0, 0), 384, 12, "cls_token"),
    "dinov3_vits16plus": BackboneShape((28683264, 0, 0), 384, 12, "cls_token"),
    "mae_vitl16": BackboneShape((303100928, 0, 1024), 1024, 24, "cls_token"),
    "msn_vitl16": BackboneShape((303100928, 0, 1024), 1024, 24, "cls_token"),
    "openclip_vith14": BackboneShape((631749120, 0, 1280), 1280, 32, "cls_token"),
    "rad_dino": BackboneShape((85528320, 0, 768), 768, 12, "cls_token"),
    "resnet152": BackboneShape((58143808, 0, 0), 2048, 5, "global_avg_pool", 32, 1),
    "sam_vitl16": BackboneShape((304018432, 1024, 1024), 1024, 24, "mean_patch"),
    "siglip2_so400m14_224": BackboneShape((427385792, 0, 1152), 1152, 27, "attention_pool"),
    "siglip2_so400m16_256": BackboneShape((427593152, 0, 1152), 1152, 27, "attention_pool"),
    "siglip2_vitb16_256": BackboneShape((92733696, 0, 768), 768, 12, "attention_pool"),
    "siglip2_vitg16_256": BackboneShape((1162775040, 0, 1536), 1536, 40, "attention_pool"),
    "siglip2_vitl16_256": BackboneShape((315694080, 0, 1024), 1024, 24, "attention_pool"),
    "vgg19": BackboneShape((139570240, 0, 0), 4096, 7, "global_avg_pool", 32, 7),
    "vit_large_patch16_in21k": BackboneShape((303100928, 0, 1024), 1024, 24, "cls_token"),
}


def _entry(spec: BackboneSpec, definition: str, weights: tuple[WeightCandidate, ...], **options) -> BackboneEntry:
    return BackboneEntry(spec=spec, definition=definition, weights=weights, shape=SHAPES[spec.name], options=options)


def _dinov2() -> list[BackboneEntry]:
    return [
        _entry(
            BackboneSpec(name=name, family="dinov2", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=14,
                         native_size=518, has_cls_token=True,
                         description=f"DINOv2 {label} (~{params}M params), LVD-142M"),
            "featx.backbones.dinov2:DINOv2Def",
            timm_candidates(name, arch, "lvd142m", torch_hub_files=(f"{name}_pretrain.pth",)),
            arch=arch, tag="lvd142m", pos_resize=DINOV2_POS_RESIZE,
        )
        for name, (arch, label, params) in DINOV2_VITS.items()
    ]


def _dinov3() -> list[BackboneEntry]:
    vits = [
        _entry(
            BackboneSpec(name=name, family="dinov3", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=16,
                         native_size=256, has_cls_token=True,
                         description=f"DINOv3 {label} + 4 registers, RoPE (~{params}M params), LVD-1689M",
                         provenance=DINOV3_PROVENANCE.format(repo=f"{arch}.lvd1689m"), licence=DINOV3_LICENCE),
            "featx.backbones.dinov3:DINOv3ViTDef",
            timm_candidates(name, arch, "lvd1689m"),
            arch=arch, tag="lvd1689m",
        )
        for name, (arch, label, params) in DINOV3_VITS.items()
    ]
    convnexts = [
        _entry(
            BackboneSpec(name=name, family="cnn", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=None,
                         native_size=224, has_cls_token=False,
                         description=f"DINOv3 ConvNeXt-{arch.split('_')[1].capitalize()} distilled from the 7B, LVD-1689M",
                         provenance=DINOV3_PROVENANCE.format(repo=f"{arch}.dinov3_lvd1689m"), licence=DINOV3_LICENCE),
            "featx.backbones.dinov3:DINOv3ConvNeXtDef",
            timm_candidates(name, arch, "dinov3_lvd1689m"),
            arch=arch, tag="dinov3_lvd1689m",
        )
        for name, arch in DINOV3_CONVNEXTS.items()
    ]
    return vits + convnexts


def _siglip2() -> list[BackboneEntry]:
    return [
        _entry(
            BackboneSpec(name=name, family="siglip2", mean=INCEPTION_MEAN, std=INCEPTION_STD, patch_size=patch,
                         native_size=native, has_cls_token=False,
                         description=f"SigLIP 2 {label} image tower (~{params}M), WebLI; cls = attention-pool (MAP) output",
                         provenance=f"Google SigLIP 2 (Tschannen et al. 2025), WebLI, via timm/{arch}.v2_webli",
                         licence="apache-2.0"),
            "featx.backbones.siglip2:SigLIP2Def",
            timm_candidates(name, arch, "v2_webli"),
            arch=arch, tag="v2_webli",
        )
        for name, (arch, label, patch, native, params) in SIGLIP2_TOWERS.items()
    ]


def _open_clip() -> list[BackboneEntry]:
    return [
        _entry(
            BackboneSpec(name=name, family="clip", mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, patch_size=14,
                         native_size=224, has_cls_token=True, description=description),
            "featx.backbones.openclip:OpenCLIPDef",
            hf_candidates(name, repo, OPEN_CLIP_HF_FILES) + ((WeightCandidate("open_clip", legacy),) if legacy else ()),
            arch=arch, quick_gelu=quick_gelu,
        )
        for name, (arch, quick_gelu, repo, legacy, description) in OPEN_CLIP_TOWERS.items()
    ]


def _cnns() -> list[BackboneEntry]:
    return [
        _entry(
            BackboneSpec(name=name, family="cnn", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=None,
                         native_size=224, has_cls_token=False, description=description),
            "featx.backbones.cnn:TimmCNNDef",
            timm_candidates(name, name, "tv_in1k", torch_hub_files=hub_files),
            arch=name, tag="tv_in1k",
        )
        for name, (description, hub_files) in CNNS.items()
    ]


def _single_vits() -> list[BackboneEntry]:
    """MAE, the supervised ViT-L/16, MSN, SAM, RAD-DINO and BiomedCLIP: one row each."""
    # MAE's util/pos_embed.interpolate_pos_embed, MSN's deit.interpolate_pos_encoding and transformers'
    # Dinov2Embeddings.interpolate_pos_encoding: bicubic to the target size, no antialias;
    # timm / big_vision (and open_clip's TimmModel tower, which leaves resizing to timm): with antialias
    no_antialias = {"mode": "bicubic", "antialias": False}
    antialias = {"mode": "bicubic", "antialias": True}
    large = "vit_large_patch16_224"
    return [
        _entry(
            BackboneSpec(name="mae_vitl16", family="mae", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=16,
                         native_size=224, has_cls_token=True,
                         description="MAE ViT-L/16 encoder, ImageNet-1k self-supervised (He et al. 2022)"),
            "featx.backbones.timm_vit:TimmViTDef",
            timm_candidates("mae_vitl16", large, "mae", torch_hub_files=("mae_pretrain_vit_large.pth",)),
            arch=large, tag="mae", pos_resize=no_antialias,
        ),
        _entry(
            BackboneSpec(name="vit_large_patch16_in21k", family="supervised_vit", mean=INCEPTION_MEAN,
                         std=INCEPTION_STD, patch_size=16, native_size=224, has_cls_token=True,
                         description="ViT-L/16 supervised on ImageNet-21k (AugReg, Steiner et al. 2021; timm augreg_in21k)"),
            "featx.backbones.timm_vit:TimmViTDef",
            timm_candidates("vit_large_patch16_in21k", large, "augreg_in21k"),
            arch=large, tag="augreg_in21k", pos_resize=antialias,
        ),
        _entry(
            BackboneSpec(name="msn_vitl16", family="msn", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=16,
                         native_size=224, has_cls_token=True,
                         description="MSN ViT-L/16 target encoder, ImageNet-1k self-supervised "
                                     "(published checkpoint mapped onto timm)"),
            "featx.backbones.msn:MSNDef",
            timm_candidates("msn_vitl16", large, None, torch_hub_files=("vitl16_600ep.pth.tar",)),
            arch=large, tag=None, pos_resize=no_antialias,
        ),
        _entry(
            BackboneSpec(name="sam_vitl16", family="sam", mean=IMAGENET_MEAN, std=IMAGENET_STD, patch_size=16,
                         native_size=1024, has_cls_token=False,
                         description="Segment Anything ViT-L/16 image encoder, SA-1B (no CLS token: mean of patch tokens)"),
            "featx.backbones.sam:SamDef",
            timm_candidates("sam_vitl16", "samvit_large_patch16", "sa1b", torch_hub_files=("sam_vit_l_0b3195.pth",)),
            arch="samvit_large_patch16", tag="sa1b",
        ),
        _entry(
            BackboneSpec(name="rad_dino", family="rad_dino", mean=RAD_DINO_MEAN, std=RAD_DINO_STD, patch_size=14,
                         native_size=518, has_cls_token=True,
                         description="RAD-DINO ViT-B/14, DINOv2 continued on chest X-rays (HF Dinov2Model mapped onto timm)",
                         provenance="Microsoft Health Futures RAD-DINO (Pérez-García et al. 2025), HF microsoft/rad-dino",
                         licence="mit (model card; earlier revisions: MSRLA)"),
            "featx.backbones.rad_dino:RadDinoDef",
            hf_candidates("rad_dino", RAD_DINO_HF_REPO, ("model.safetensors", "pytorch_model.bin")),
            arch="vit_base_patch14_dinov2", tag=None, pos_resize=no_antialias,
        ),
        _entry(
            BackboneSpec(name="biomedclip_vitb16", family="biomedclip", mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD,
                         patch_size=16, native_size=224, has_cls_token=True,
                         description="BiomedCLIP ViT-B/16 image tower, PMC-15M (open_clip hf-hub, pre-projection class token)",
                         provenance=f"Microsoft BiomedCLIP (Zhang et al. 2023), PMC-15M, open_clip hf-hub:{BIOMEDCLIP_HF_REPO}",
                         licence="mit"),
            "featx.backbones.biomedclip:BiomedCLIPDef",
            hf_candidates("biomedclip_vitb16", BIOMEDCLIP_HF_REPO,
                          ("open_clip_pytorch_model.bin", "open_clip_model.safetensors")),
            arch="vit_base_patch16_224", tag=None, pos_resize=antialias,
        ),
    ]


#: every registered backbone, in table order
ENTRIES: tuple[BackboneEntry, ...] = (*_dinov2(), *_dinov3(), *_siglip2(), *_open_clip(), *_cnns(), *_single_vits())

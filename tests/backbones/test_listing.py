"""featx.backbones.listing and the name check: the listing and a refusal import neither torch nor timm."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from featx.backbones import BackboneError
from featx.backbones.listing import describe_backbone
from featx.backbones.registry import check_backbone_name

ROOT = Path(__file__).resolve().parents[2]


def test_listing_and_name_checks_import_no_torch(tmp_path):
    script = (
        "import sys\nfrom featx.cli import app\n"
        "app(['backbones'], standalone_mode=False)\n"
        "app(['backbones', '--json', '--name', 'dinov3_vits16'], standalone_mode=False)\n"
        "from featx.backbones.registry import check_backbone_name\n"
        "check_backbone_name('resnet18.a1_in1k')\n"
        "try:\n    check_backbone_name('dinov2_vit14l')\nexcept ValueError as exc:\n    print(exc)\n"
        "print(sorted(m for m in ('torch', 'timm', 'open_clip') if m in sys.modules))\n"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path),
           "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "[]"
    assert "unknown backbone 'dinov2_vit14l'" in lines[-2] and "dinov2_vitl14" in lines[-2]
    assert sum(line.startswith(("dinov2_", "dinov3_", "sam_vitl16 ")) for line in lines) >= 19


@pytest.mark.parametrize("name", ["dinov2_vitl14", "vgg19", "vit_small_patch16_224", "convnext_tiny.fb_in1k"])
def test_known_names_pass_the_check(name):
    check_backbone_name(name)


def test_a_typo_is_one_sentence_naming_it_and_close_matches():
    with pytest.raises(BackboneError) as caught:
        check_backbone_name("dinov3_vitl61")
    message = str(caught.value)
    assert "'dinov3_vitl61'" in message and "dinov3_vitl16" in message and "\n" not in message
    with pytest.raises(BackboneError, match="resnet18"):
        check_backbone_name("resnet1888")  # close only to timm names


def test_unknown_name_is_refused_by_describe():
    with pytest.raises(BackboneError, match="'no_such_backbone'"):
        describe_backbone("no_such_backbone")

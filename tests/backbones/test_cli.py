"""featx.cli.backbones: `featx backbones` lists names, params, dims, grids and local weights."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from featx.backbones.weights import featx_weights_dir
from featx.cli.backbones import backbones_command


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(backbones_command)
    return app


def test_table_lists_grids_and_missing_weights():
    result = CliRunner().invoke(_app(), ["--name", "dinov2_vitl14", "--name", "resnet152", "--name", "sam_vitl16"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    assert lines["name"][6:8] == ["grid@224", "grid@448"]
    assert lines["dinov2_vitl14"][1:8] == ["dinov2", "303.2", "1024", "14", "518", "16x16", "32x32"]
    assert lines["resnet152"][6:8] == ["7x7", "14x14"] and lines["resnet152"][3] == "2048"
    assert lines["sam_vitl16"][6:8] == ["14x14", "28x28"]
    assert "not found" in lines["dinov2_vitl14"][-2] + " " + lines["dinov2_vitl14"][-1]
    assert "--weights FILE" in result.output


def test_json_reports_found_weights_and_custom_sizes():
    target = featx_weights_dir() / "vit_small_patch16_224.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"listing only checks that the file is there")
    result = CliRunner().invoke(_app(), ["--name", "vit_small_patch16_224", "--size", "32", "--size", "64", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip())
    assert row["weights_found"] == str(target)
    assert row["patch_grid"] == {"32": [2, 2], "64": [4, 4]}
    assert row["feature_dim"] == 384


def test_lists_the_new_backbones_with_dims_grids_and_cls_policy():
    names = ["dinov3_vits16", "dinov3_convnext_base", "rad_dino", "biomedclip_vitb16", "siglip2_so400m14_224"]
    result = CliRunner().invoke(_app(), [arg for n in names for arg in ("--name", n)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    assert lines["name"][6:9] == ["grid@224", "grid@448", "cls"]
    assert lines["dinov3_vits16"][1:9] == ["dinov3", "21.6", "384", "16", "256", "14x14", "28x28", "cls_token"]
    assert lines["dinov3_convnext_base"][3] == "1024" and lines["dinov3_convnext_base"][6:8] == ["7x7", "14x14"]
    assert lines["rad_dino"][1:9] == ["rad_dino", "85.7", "768", "14", "518", "16x16", "32x32", "cls_token"]
    assert lines["biomedclip_vitb16"][3:9] == ["768", "16", "224", "14x14", "28x28", "cls_token"]
    assert lines["siglip2_so400m14_224"][3:9] == ["1152", "14", "224", "16x16", "32x32", "attention_pool"]
    assert "attention_pool = the model's own attention-pooling head output" in result.output.replace("\n", " ")

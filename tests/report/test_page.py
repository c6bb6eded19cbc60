"""The report page in a real (headless) browser at 1280 px: what a reader needs to judge each number is on it."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from featx.report.build import build_report
from featx.report.figures import Drawn
from tests.report.conftest import make_full_records, record, write
from tests.report.test_failures import failure

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=3000", *args], capture_output=True, text=True, timeout=120)


def trusted_records():
    """The full record set with what the probe runner writes beside each number, one val grid and one failure."""
    rows = [r | {"n_patients": 24, "n_test": 52, "level": "image", "command": "featx probe --store S --setting linear"}
            for r in make_full_records()]
    rows[0]["small_set_warnings"] = ["val has only 8 patients (fewer than 30): its AUROC and interval are rough"]
    rows += [record(split="val", hyperparameters={"backend": "torch", "lr": lr}, value=0.7, store_key="k-nih-dinov2_vitl14")
             for lr in (0.001, 0.01, 0.1)]
    return rows + [failure()]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`apt-get install chromium`; `make test` tries)")
def test_the_page_shows_n_hyper_parameters_failed_settings_and_one_title_per_figure(tmp_path):
    report = build_report([write(tmp_path / "r.jsonl", trusted_records())], tmp_path / "report")
    dom = chromium("--dump-dom", report.html.resolve().as_uri()).stdout
    text = re.sub(r'alt="[^"]*"', "", dom)  # what a reader sees, not the images' alt text
    assert "n test (patients / images)" in text and "24 patients / 52 images" in text
    assert "Hyper-parameters: chosen on validation, from the grid" in text and "lr ∈ {0.001, 0.01, 0.1}" in text
    assert "Not run / failed" in text and "the U-Net decoder needs 5 blocks of patch tokens" in text
    assert "⚠ nih: val has only 8 patients" in text
    for figure in report.figures:
        assert text.count(figure.title) == 1, figure.title
    drawn = [f for f in report.figures if isinstance(f, Drawn)]
    assert {f.key for f in drawn} == {"fig1_ranks", "fig3_linear", "fig4_decoders", "fig5_fewshot"}
    assert f'data-images-loaded="{len(drawn)}"' in dom

    shot = tmp_path / "page.png"
    chromium("--window-size=1280,5000", f"--screenshot={shot}", report.html.resolve().as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (5000, 1280)
    assert (pixels.sum(axis=2) < 600).mean() > 0.02, "the page rendered (almost) blank"
    coloured = np.abs(pixels[..., 0] - pixels[..., 2]) > 60
    assert coloured[300:].mean() > 0.0005, "no coloured figure content"

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featx.report.build import build_report
from featx.report.figures import Drawn, Missing
from featx.report.publish import ReportWriteError
from tests.report.conftest import record, write
from tests.tmpfs import fill, resize

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_writes_markdown_csv_figures_and_one_self_contained_page(full_report):
    report = full_report
    drawn = {f.key for f in report.figures if isinstance(f, Drawn)}
    assert drawn == {"fig1_ranks", "fig3_linear", "fig4_decoders", "fig5_fewshot"}
    assert {f.key for f in report.figures if isinstance(f, Missing)} == {"fig2_pca", "fig6_masks"}
    for figure in report.figures:
        if isinstance(figure, Drawn):
            assert figure.png.exists() and figure.svg.exists()
    text = report.markdown.read_text()
    for title in ("### linear:", "### knn:", "### seg_linear:", "### seg_unet:", "### fewshot-linear:",
                  "trainable parameters", "Rank per dataset", "RANDOM WEIGHTS", "Figure 2", "not drawn"):
        assert title in text, title
    rows = list(csv.DictReader(report.csv.open()))
    assert {r["section"] for r in rows} >= {"linear", "knn", "seg_linear", "seg_unet", "fewshot-linear", "finetune-lora"}
    page = report.html.read_text()
    assert page.count("data:image/png;base64,") == 4 and "http://" not in page and "https://" not in page
    assert "data:text/csv;base64," in page  # the CSV travels inside the page too
    assert 'class="banner"' in page and "vit_random on nih" in page
    assert "k-nih-dinov2_vitl14" in page and "a" * 64 in page  # provenance: store keys and weights hashes


def test_bad_paths_are_refused_before_anything_is_written(tmp_path):
    results = write(tmp_path / "r.jsonl", [record()])
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--out .*/file is a file; give --out a folder"):
        build_report([results], tmp_path / "file")
    from featx.cache import StoreError

    with pytest.raises(StoreError, match="not a feature store"):
        build_report([results], tmp_path / "out", stores=[tmp_path])
    with pytest.raises(FileNotFoundError, match="no such mask folder"):
        build_report([results], tmp_path / "out", masks=[tmp_path / "nowhere"])
    assert not (tmp_path / "out").exists()


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=3000", *args], check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (`apt-get install chromium`; `make test` tries)")
def test_the_page_renders_in_a_real_browser_with_tables_figures_and_the_banner(tmp_path, full_report):
    url = full_report.html.resolve().as_uri()
    dom = chromium("--dump-dom", url).stdout
    assert 'data-images-loaded="4"' in dom, dom[:500]
    assert 'data-tables="' in dom and int(dom.split('data-tables="')[1].split('"')[0]) >= 7
    shot = tmp_path / "shot.png"
    chromium("--window-size=1200,2400", f"--screenshot={shot}", url)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (2400, 1200)
    assert (pixels.sum(axis=2) < 600).mean() > 0.05, "the page rendered (almost) blank"
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 70) & (pixels[..., 2] < 70)
    assert red[:200].mean() > 0.05, "no red random-weights banner at the top"
    coloured = np.abs(pixels[..., 0] - pixels[..., 2]) > 60
    assert coloured[200:].mean() > 0.001, "no coloured figure content below the banner"


def snapshot(folder):
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def written(report):
    """The files a Report says it wrote, relative to its folder."""
    drawn = [p for f in report.figures if isinstance(f, Drawn) for p in (f.png, f.svg)]
    return {str(p.relative_to(report.out)) for p in [report.markdown, report.csv, report.html, *drawn]}


def test_a_full_disk_while_writing_a_report_leaves_the_earlier_report_intact(tmp_path, tmpfs):
    resize(tmpfs, "1m")
    yesterday = write(tmp_path / "old.jsonl", [record(), record(backbone="densenet201", value=0.7, store_key="d")])
    today = write(tmp_path / "new.jsonl", [record(backbone="vit_today", value=0.8, store_key="t")])
    out = tmpfs / "report"
    build_report([yesterday], out)
    before = snapshot(out)
    filler = fill(tmpfs, leave=40_000)  # room for some of the new report, not all of it
    with pytest.raises(ReportWriteError, match=rf"^{out}: could not write the report \(No space left on device\); "
                                               "the report already there is unchanged"):
        build_report([today], out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler", "report"]  # the half-written new one is gone
    filler.unlink()
    report = build_report([today], out)
    assert set(snapshot(out)) == written(report)  # the new report whole, no file of the old one left in it
    assert "vit_today" in report.markdown.read_text() and "densenet201" not in report.markdown.read_text()
    assert report.html == out / "report.html" and all(f.png.parent == out / "figures" for f in report.figures
                                                      if isinstance(f, Drawn))
    assert sorted(p.name for p in tmpfs.iterdir()) == ["report"]


def test_a_report_killed_while_writing_leaves_the_earlier_one_and_the_next_run_cleans_up(tmp_path):
    results = write(tmp_path / "r.jsonl", [record(), record(backbone="densenet201", value=0.7, store_key="d")])
    out = tmp_path / "report"
    build_report([results], out)
    before = snapshot(out)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-m", "featx", "report", str(results), "--out", str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = []
    for _ in range(6000):  # until it has started writing the new report beside the old one
        staging = list(tmp_path.glob(".report.featx-new-*"))
        if staging or child.poll() is not None:
            break
        time.sleep(0.01)
    child.kill()
    child.wait()
    assert staging, "the report was never written beside the old one"
    assert snapshot(out) == before
    assert staging[0].exists()  # what the killed run left ...
    report = build_report([results], out)
    assert not staging[0].exists()  # ... the next run removes
    assert set(snapshot(out)) == written(report)

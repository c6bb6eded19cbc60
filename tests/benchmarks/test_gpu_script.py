"""benchmarks/gpu.sh --dry-run: every step of the prepared GPU run starts and runs through on the CPU."""

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.sh"


def test_dry_run_runs_every_step_through_and_tabulates_them(tmp_path):
    steps = re.findall(r"^step (\S+) (\d+) ", SCRIPT.read_text(), flags=re.M)
    assert len(steps) >= 12 and sum(int(limit) for _, limit in steps) <= 540  # the GPU run fits ~8 minutes
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=SCRIPT.parents[1], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name, _ in steps:
        assert f"=== {name} exit 0" in done.stdout, (name, (tmp_path / f"{name}.txt").read_text()[-3000:])
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert [line.split()[:2] for line in summary[1:]] == [[name, "0"] for name, _ in steps]
    # each step printed its table, not only started
    assert "pixel store -> store, steady" in (tmp_path / "extract-pixels-l14-224.txt").read_text()
    assert re.search(r"dinov2_vits14\s+lora\s+[\d,]+\s+[\d,]+", (tmp_path / "finetune.txt").read_text())
    seg = (tmp_path / "finetune-seg.txt").read_text()
    assert "segmentation (seg_unet decoder" in seg and re.search(r"dinov2_vits14\s+bitfit\s+[\d,]+\s+[\d,]+", seg)
    assert "ratio" in (tmp_path / "segmentation.txt").read_text()
    assert re.search(r"^knn \{", (tmp_path / "probes.txt").read_text(), flags=re.M)
    assert re.search(r"^swinunetr3d\s+32\s+64x64x64\s+8\s", (tmp_path / "volumes.txt").read_text(), flags=re.M)

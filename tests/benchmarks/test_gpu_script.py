"""benchmarks/gpu.sh --dry-run: the prepared GPU run lists every step on a CPU machine, and its CPU steps run."""

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.sh"


def test_dry_run_lists_every_step_and_runs_the_cpu_ones(tmp_path):
    steps = re.findall(r"^(?:if .*; then DRY_RUN=0 )?step (\S+) \d+ ", SCRIPT.read_text(), flags=re.M)
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, OMP_NUM_THREADS="1")
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=SCRIPT.parents[1], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = re.findall(r"^=== (\S+)", done.stdout, flags=re.M)
    assert len(steps) >= 10 and set(steps) <= set(listed), (steps, listed)
    assert "=== finetune-dry exit 0" in done.stdout  # the one step that runs on the CPU in a dry run
    assert re.search(r"dinov2_vits14\s+lora\s+[\d,]+\s+[\d,]+", done.stdout)

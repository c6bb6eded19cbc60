"""Start-up time of the featx commands a user types first, beside bare Python and `import torch`.

Each command runs as a fresh process (as from a shell), ``--repeats`` times; the median
wall and CPU times are printed with the ratio to bare ``python -c pass`` measured in the
same run (CPU time is what the command costs; on a busy machine wall time also waits). The no-op extract finds a complete
store of a small planted-signal CSV dataset (built first, once) and loads no model. ``featx backbones`` lists every
backbone; the typo'd names are refused (exit 1) by the listing and by extract.

With ``--before DIR`` (a checkout of featx before a change), the commands that do not need this checkout's stores
also run from there, and both timings are printed side by side.

    .venv/bin/python benchmarks/startup.py            # 5 repeats
    .venv/bin/python benchmarks/startup.py --repeats 9
    git archive main | tar -x -C /tmp/before && .venv/bin/python benchmarks/startup.py --before /tmp/before
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model-override=depth=2", "--model-override=embed_dim=32", "--model-override=num_heads=2"]
#: a typo of dinov2_vitl14: refused with exit status 1
TYPO = "dinov2_vit14l"


def timed(command: list[str], repeats: int, env: dict[str, str], root: Path = ROOT) -> tuple[float, float]:
    """Median wall and CPU (user+sys) seconds of ``command`` over ``repeats`` fresh processes run in ``root``.

    CPU time is what the command itself costs; wall time also holds waiting for a busy machine. A
    command must exit 0, or 1 when it names the typo'd backbone (a refusal is what is timed).
    """
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=root)
        walls.append(time.perf_counter() - started)
        if done.returncode != (1 if TYPO in command else 0):
            raise SystemExit(f"{' '.join(command)} (in {root}) exited {done.returncode}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def featx_import_seconds(command: list[str], env: dict[str, str]) -> float:
    """Seconds spent importing featx's own modules (their self time, dependencies left out)."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], env=env, cwd=ROOT, capture_output=True, text=True)
    total = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip().startswith("featx"):
            total += int(line.split(":", 1)[1].split("|")[0])
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a checkout of featx before a change, timed side by side")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    python = sys.executable
    featx = [python, "-m", "featx"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(
            [python, "-c", f"from featx.demo.data import make_demo_data; make_demo_data({str(tmp / 'data')!r}, n_patients=12, n_volumes=4)"],
            check=True, env=env, cwd=ROOT,
        )
        extract = [*featx, "extract", "--dataset", "csv", "--root", str(tmp / "data" / "xray" / "xray.csv"),
                   "--backbone", "dinov2_vits14", "--size", "28", "--cache", str(tmp / "cache"), "--random-init",
                   "--n-last", "2", "--workers", "0", *TINY]
        subprocess.run(extract, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (tmp / "empty").mkdir()
        commands = {
            "python -c pass": [python, "-c", "pass"],
            "python -c 'import torch'": [python, "-c", "import torch"],
            "featx --help": [*featx, "--help"],
            "featx --version": [*featx, "--version"],
            "featx datasets": [*featx, "datasets"],
            "featx cache ls (1 store)": [*featx, "cache", "ls", str(tmp / "cache")],
            "featx report --help": [*featx, "report", "--help"],
            "featx extract (no-op, up to date)": extract,
            "featx backbones": [*featx, "backbones"],
            f"featx backbones --name {TYPO}": [*featx, "backbones", "--name", TYPO],
            f"featx extract --backbone {TYPO}": [*extract[:extract.index("--backbone") + 1], TYPO,
                                                 *extract[extract.index("--backbone") + 2:]],
        }
        results = {name: timed(command, args.repeats, env) for name, command in commands.items()}
        before: dict[str, tuple[float, float]] = {}
        if args.before:
            env_before = {**env, "PYTHONPATH": str(args.before.resolve())}
            before = {name: timed(command, args.repeats, env_before, args.before.resolve())
                      for name, command in commands.items() if name.startswith("featx") and "no-op" not in name
                      and "cache ls" not in name}
        own = {name: featx_import_seconds(command, env) for name, command in commands.items() if name.startswith("featx")}
    bare_wall, bare_cpu = results["python -c pass"]
    print(f"start-up, median of {args.repeats} fresh processes ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}):")
    head = f"  {'command':40s} {'wall':>8s} {'x bare':>7s} {'cpu':>8s} {'cpu minus bare python':>22s}"
    print(head + (f" {'wall before':>12s} {'cpu before':>11s}" if before else ""))
    for name, (seconds, cpu) in results.items():
        line = f"  {name:40s} {seconds:7.3f}s {seconds / bare_wall:7.1f} {cpu:7.3f}s {cpu - bare_cpu:21.3f}s"
        if name in before:
            line += f" {before[name][0]:11.3f}s {before[name][1]:10.3f}s"
        print(line)
    print("importing featx's own modules (self time from -X importtime; the rest is typer, numpy, pandas, zarr):")
    for name, seconds in own.items():
        print(f"  {name:40s} {seconds:7.3f}s")


if __name__ == "__main__":
    main()

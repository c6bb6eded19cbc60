"""``--dry-run`` for the benchmarks: the same code at tiny sizes on the CPU.

``bash benchmarks/gpu.sh --dry-run`` (run by the test suite) passes ``--dry-run`` to every
step, so a machine without a GPU checks that each step of the prepared GPU run starts,
runs through and prints its table. The numbers of a dry run mean nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "tiny sizes on the CPU: check that this benchmark runs through (its numbers mean nothing)"


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the ``--dry-run`` flag."""
    parser.add_argument("--dry-run", action="store_true", help=HELP)


def shrink(args: argparse.Namespace, **tiny: Any) -> None:
    """Under ``--dry-run``: the CPU and the ``tiny`` values, whatever the command line asked for."""
    if args.dry_run:
        args.device = "cpu"
        for name, value in tiny.items():
            setattr(args, name, value)
        print(f"dry run: cpu, {', '.join(f'{k}={v}' for k, v in tiny.items())} (the numbers mean nothing)", flush=True)

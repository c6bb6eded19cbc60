"""Checks of a command's output paths, made before any work: a results file and a report folder.

Each failure is a :class:`~featx.jobs.checks.CheckError` whose message is one sentence naming
the option and the path and what to do; nothing is created by a check. Whether a folder can
be written is tried for real (root ignores permission bits; read-only mounts do not).
"""

from __future__ import annotations

import os
from pathlib import Path

from featx.jobs.checks import CheckError, folder_is_writable

REPORT_ENTRIES = frozenset({"report.html", "report.md", "tables.csv", "comparisons.jsonl", "figures"})


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_results_file(path: str | Path, option: str = "--out") -> None:
    """Refuse a results file that could not be appended to: a folder, under a file, read-only or unwritable."""
    given = Path(path)
    target = given.expanduser().absolute()
    if target.is_dir():
        raise CheckError(f"{option} {given} is a folder; give a results file, e.g. {given / 'results.jsonl'}")
    existing = _first_existing(target)
    if existing != target and not existing.is_dir():
        raise CheckError(f"{option} {given} cannot be created because {existing} is a file, not a folder; "
                         "give a results file in a folder")
    if existing == target:
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_APPEND))
        except OSError as error:
            raise CheckError(f"{option} {given} cannot be appended to ({error.strerror}); "
                             "give a writable results file") from None
    elif not folder_is_writable(existing):
        raise CheckError(f"{option} {given} cannot be created: {existing} is not writable (a read-only mount?); "
                         "give a results file in a writable folder")


def check_report_folder(path: str | Path, option: str = "--out") -> None:
    """Refuse a report folder that could not be replaced in whole by a new report.

    A report is written into a new folder beside ``path`` and then switched in for it, so
    ``path`` must be a folder (or not yet exist) holding nothing but an earlier report, its
    parent must be writable, and it may not be a mount point or hold the current folder.
    """
    given = Path(path)
    target = given.expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise CheckError(f"{option} {given} is a file; give {option} a folder for the report")
    existing = _first_existing(target)
    if not existing.is_dir():
        raise CheckError(f"{option} {given} cannot be created because {existing} is a file, not a folder; "
                         f"give {option} a folder for the report")
    place = existing  # where the new report's folder is made
    if target.is_dir():
        real = target.resolve()
        if os.path.ismount(real):
            raise CheckError(f"{option} {given} is a mount point, which a new report cannot replace in whole; "
                             f"give a folder inside it, e.g. {given / 'report'}")
        if real == Path.cwd().resolve() or real in Path.cwd().resolve().parents:
            raise CheckError(f"{option} {given} holds the current folder, which a new report would replace; "
                             f"give a folder of its own, e.g. {given / 'report'}")
        foreign = sorted(name for name in os.listdir(real) if name not in REPORT_ENTRIES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise CheckError(f"{option} {given} holds files that are not part of a featx report ({shown}), and a "
                             f"new report replaces the whole folder; give a new folder, e.g. {given / 'report'}")
        place = real.parent
    if not folder_is_writable(place):
        raise CheckError(f"{option} {given} cannot be written: {place} is not writable (a read-only mount?); "
                         f"give {option} a folder in a writable place")

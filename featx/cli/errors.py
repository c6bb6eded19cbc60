"""Exit statuses of every featx command, and the errors that print as one line instead of a traceback.

0   everything asked for was produced (or was already up to date)
1   an error stopped the command; one line on stderr says what to change; no results
2   the command line itself is wrong (unknown option, missing argument: click's usage error)
3   partial: results were written, but some stores or settings failed (each listed)
130 interrupted (Ctrl-C or SIGTERM); what was saved is kept and a re-run resumes
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130

# (module, class): user-caused errors. Looked up only in modules already imported, so that
# `featx --help` imports none of them (an exception of a module never imported cannot occur).
EXPECTED = (
    ("featx.datasets.index", "DatasetError"),
    ("featx.cache.store", "StoreError"),
    ("featx.backbones.weights", "WeightsError"),
    ("featx.backbones.spec", "BackboneError"),
    ("featx.evaluation.features", "ProbeError"),
)


def is_expected(error: BaseException) -> bool:
    """Whether ``error`` is a user-caused problem that deserves one line, not a traceback."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError, PermissionError, ValueError)):
        return True
    for module, name in EXPECTED:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(error, getattr(loaded, name)):
            return True
    return False

"""A full disk under the cache is one sentence, not a traceback from deep inside zarr."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from featx.cache.store import StoreError


class CacheFullError(StoreError):
    """The device holding the cache ran out of space (or quota) while a store was written."""


def caused_by_full_disk(error: BaseException | None) -> bool:
    """Whether ``error`` or anything in its cause/context chain is ENOSPC or EDQUOT."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def full_disk_explained(folder: Path) -> Iterator[None]:
    """Turn a full disk anywhere inside into :class:`CacheFullError` naming ``folder``.

    Blocks already marked written stay; the half-written block is not marked, and a
    half-laid-out store is laid out again, so re-running after freeing space resumes.
    """
    try:
        yield
    except Exception as exc:
        if not caused_by_full_disk(exc):
            raise
        raise CacheFullError(
            f"{folder}: no space left on the device holding the cache; free space (or pass another --cache) "
            "and re-run `featx extract`: it resumes from the blocks already written"
        ) from None

"""Shared pytest fixtures for the dataset tests (builders live in tests/datasets/fixtures.py)."""

from __future__ import annotations

import pytest

from featx.datasets import readers


@pytest.fixture(autouse=True)
def _clear_volume_caches():
    """Readers cache volumes per path; tests rewrite files at the same paths."""
    readers.load_canonical_volume.cache_clear()
    readers.load_dicom_volume.cache_clear()
    yield
    readers.load_canonical_volume.cache_clear()
    readers.load_dicom_volume.cache_clear()

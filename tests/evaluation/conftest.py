"""The evaluation tests reuse the probes' planted-signal fixtures (real feature stores)."""

from tests.probes.conftest import store_factory  # noqa: F401  (pytest fixture)

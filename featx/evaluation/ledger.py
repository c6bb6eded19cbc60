"""The test-use ledger: every scoring of a test split, across objects and across runs.

:class:`~featx.evaluation.selection.Splits` seals the test split of one object, but a fresh
``Splits`` on the same data, another ``test_name``, or ``featx probe`` run again with
another ``--k`` into the same results file could score the test again unnoticed, which
is how one ends up choosing on test. The ledger remembers each test scoring as

* **where**: the store key (and ``store_version`` where the store has one), or for
  in-memory data a hash of the test rows' ids, patients, labels and last-layer CLS;
* **what**: the setting and its *scope* (what legitimately tells scorings of one setting
  apart: few-shot ``shots`` and ``fewshot_seed``);
* **how**: a fingerprint of the hyper-parameters (including the candidate grid) and seed.

A scoring of the same where + what with a fingerprint not seen before, after others,
is a **re-use**: it warns (:class:`TestReuseWarning`) unless allowed, and its records
carry ``test_reuse: n`` (n = the number of other fingerprints scored there before it).
Scoring a fingerprint again (an identical re-run) is no new look at the test: no
warning, and ``test_reuse`` is what it was the first time.

One process-wide ledger (:data:`LEDGER`) is used by default; ``run_probes`` also loads
the test records already in its results file into it, so a second run is checked
against the first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger("featx.probes")

SCOPE_KEYS = ("shots", "fewshot_seed")  # hyper-parameters that name a scoring rather than tune it
VOLATILE_KEYS = ("n_patients", "n_units")  # derived from the scope, not chosen
HEADLINE_METRICS = ("auroc_macro", "dice_jaccard_mean")  # one record per test scoring: classification, segmentation


class TestReuseWarning(UserWarning):
    """A test split was scored again with other hyper-parameters."""

    __test__ = False


@dataclass(frozen=True)
class TestUse:
    """One test scoring as the ledger saw it."""

    __test__ = False

    where: str
    what: str
    fingerprint: str
    reuse: int  # other fingerprints scored at (where, what) before this one
    deliberate: bool  # the re-use was explicitly allowed

    def as_record(self) -> dict[str, Any]:
        """The fields every test record of this scoring carries."""
        return {
            "test_reuse": self.reuse,
            "test_use": {"where": self.where, "what": self.what, "fingerprint": self.fingerprint, "deliberate": self.deliberate},
        }


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def where_of(
    provenance: Mapping[str, Any],
    test_ids: np.ndarray,
    test_patients: np.ndarray,
    test_labels: np.ndarray,
    test_features: np.ndarray | None = None,
) -> str:
    """The identity of a test split: its store key (+ version), or a hash of its rows
    (ids, patients, labels and, where given, features: other features are another store)."""
    key = provenance.get("store_key")
    if key:
        version = provenance.get("store_version")
        return f"store:{key}" + (f"@{version}" if version not in (None, "") else "")
    digest = hashlib.sha256()
    for array in (np.asarray(test_ids).astype(str), np.asarray(test_patients).astype(str)):
        digest.update("\x1f".join(array.tolist()).encode())
    digest.update(np.ascontiguousarray(np.nan_to_num(np.asarray(test_labels, dtype=np.float32), nan=-1.0)).tobytes())
    if test_features is not None:
        digest.update(np.ascontiguousarray(test_features).tobytes())
    return f"rows:{digest.hexdigest()[:16]}"


def what_of(setting: str, hyperparameters: Mapping[str, Any]) -> str:
    """The setting and its scope (few-shot shots and seed), as one string."""
    scope = {k: hyperparameters[k] for k in SCOPE_KEYS if k in hyperparameters}
    return setting + (json.dumps(_canonical(scope), sort_keys=True) if scope else "")


def fingerprint_of(hyperparameters: Mapping[str, Any], seed: Any) -> str:
    """A short hash of the hyper-parameters (candidate grid included) and seed."""
    kept = {k: v for k, v in hyperparameters.items() if k not in VOLATILE_KEYS}
    text = json.dumps(_canonical({"hyperparameters": kept, "seed": seed}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TestLedger:
    """Test scorings seen so far: (where, what) -> fingerprints in the order first seen."""

    __test__ = False

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], list[str]] = {}

    def clear(self) -> None:
        self._seen.clear()

    def seen(self, where: str, what: str) -> list[str]:
        return list(self._seen.get((where, what), []))

    def record(self, where: str, what: str, fingerprint: str, *, allow_reuse: bool = False) -> TestUse:
        """Enter one test scoring; warn loudly if it re-uses a test scored with other settings."""
        prints = self._seen.setdefault((where, what), [])
        if fingerprint in prints:  # an identical re-run: what its first scoring was, no warning
            before = prints.index(fingerprint)
            return TestUse(where, what, fingerprint, before, bool(allow_reuse and before))
        prints.append(fingerprint)
        n = len(prints) - 1
        use = TestUse(where, what, fingerprint, n, bool(allow_reuse and n))
        if n and not allow_reuse:
            message = (
                f"TEST SPLIT RE-USED: {where} / {what} was already scored on test with {n} other "
                "hyper-parameter set(s); comparing these test numbers is selecting on test. The records are "
                f"marked test_reuse: {n}. Select on validation instead, or pass --allow-test-reuse "
                "(allow_test_reuse=True) for a deliberate re-run"
            )
            log.warning(message)
            warnings.warn(message, TestReuseWarning, stacklevel=3)
        return use

    def load_records(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Enter the test scorings behind result records (one per scoring); returns how many.

        A scoring is named by its headline record: ``auroc_macro`` (classification) or
        ``dice_jaccard_mean`` without a class or an aggregation other than the per-unit one
        (segmentation).

        Records written before the ledger existed are entered from their store key,
        setting, hyper-parameters and seed.
        """
        entered = 0
        for record in records:
            if record.get("split") != "test" or record.get("metric") not in HEADLINE_METRICS or record.get("aggregate"):
                continue
            if record.get("class") is not None or str(record.get("aggregation") or "per_").startswith("all_"):
                continue  # segmentation writes several dice_jaccard_mean records per scoring; the per-unit one counts
            use = record.get("test_use")
            if isinstance(use, Mapping) and {"where", "what", "fingerprint"} <= set(use):
                where, what, fingerprint = str(use["where"]), str(use["what"]), str(use["fingerprint"])
            elif record.get("store_key") and record.get("setting"):
                hyper = record.get("hyperparameters") or {}
                where = where_of({"store_key": record["store_key"], "store_version": record.get("store_version")}, [], [], np.zeros((0, 0)))
                what = what_of(str(record["setting"]), hyper)
                fingerprint = fingerprint_of(hyper, record.get("seed"))
            else:
                continue
            prints = self._seen.setdefault((where, what), [])
            if fingerprint not in prints:
                prints.append(fingerprint)
            entered += 1
        return entered


LEDGER = TestLedger()
"""The process-wide ledger every :class:`~featx.evaluation.selection.Splits` uses by default."""

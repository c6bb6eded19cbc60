"""Validation-only model selection: the test split is sealed until one final scoring.

The released code of the paper picks its linear-probe configuration on the test set
when no validation set is given, and its few-shot path trains on the validation set.
:class:`Splits` makes both impossible through its API:

* the labels of test rows are removed from everything it hands out (views carry NaN
  there); the real ones are kept privately and only used to score;
* :meth:`Splits.select` runs a selection with the test split locked: asking for test
  inputs or scores inside it raises :class:`SealedSplitError`;
* :meth:`Splits.score_test_once` scores a named result on test exactly once; a second
  call with the same name raises :class:`TestAlreadyScored`;
* a selection on a store without validation rows raises :class:`NoValidationSplit`
  (never a fall-back to test);
* a patient in more than one split raises :class:`PatientLeakError` (the adapters'
  patient-level check, applied again to whatever data reaches a probe);
* every test scoring is entered in the test-use ledger (:mod:`featx.evaluation.ledger`),
  which sees other ``Splits`` objects and earlier runs: scoring the same test again with
  other hyper-parameters warns and is marked ``test_reuse: n``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from featx.datasets.index import DatasetError, check_patient_level
from featx.evaluation import ledger as ledger_mod
from featx.evaluation.features import ProbeData, ProbeError
from featx.evaluation.metrics import Scored, score, score_over_seeds


class SealedSplitError(RuntimeError):
    """The test split was asked for while it is sealed (during selection)."""


class TestAlreadyScored(RuntimeError):
    """A result was scored on the test split a second time."""

    __test__ = False  # not a pytest class


class NoValidationSplit(ProbeError):
    """Selection needs validation rows and the store has none."""


class PatientLeakError(ProbeError):
    """A patient appears in more than one split."""


def check_patient_split(patients: np.ndarray, split: np.ndarray, where: str) -> None:
    """Refuse data in which a patient sits in two splits (the adapters' check and message)."""
    try:
        check_patient_level(pd.DataFrame({"patient_id": np.asarray(patients).astype(str), "split": np.asarray(split).astype(str)}))
    except DatasetError as error:
        raise PatientLeakError(
            f"{where}: {error}; its near neighbours would be the same patient's other images. "
            "Re-split the dataset by patient (featx datasets) and extract the store again"
        ) from None


class _FeatureRows:
    """Features of some rows of a ProbeData (no labels: subclasses add what they may show)."""

    def __init__(self, data: ProbeData, rows: np.ndarray) -> None:
        self._data = data
        self.rows = rows

    @property
    def n(self) -> int:
        return int(self.rows.size)

    def features(self, n_last_blocks: int = 1, avgpool: bool = False, dtype: type | None = np.float32) -> np.ndarray:
        return self._data.features(n_last_blocks, avgpool, rows=self.rows, dtype=dtype)

    def block(self, name: str) -> np.ndarray:
        return self._data.blocks[name][self.rows]

    @property
    def blocks(self) -> dict[str, np.ndarray]:
        """All rows' feature blocks (features only; index them with :attr:`rows`)."""
        return self._data.blocks


class SplitView(_FeatureRows):
    """Labelled rows of one non-test split (``train``, ``val`` or ``train+val``)."""

    def __init__(self, data: ProbeData, rows: np.ndarray, name: str) -> None:
        super().__init__(data, rows)
        self.name = name

    @property
    def labels(self) -> np.ndarray:
        return self._data.labels[self.rows]

    @property
    def patients(self) -> np.ndarray:
        return self._data.patients[self.rows]

    @property
    def task(self) -> str:
        return self._data.task

    @property
    def label_names(self) -> list[str]:
        return list(self._data.label_names)

    @property
    def layers(self) -> list[str]:
        return list(self._data.layers)

    def subset(self, positions: np.ndarray, name: str | None = None) -> SplitView:
        """A view of some of these rows (positions within this view)."""
        return SplitView(self._data, self.rows[np.asarray(positions)], name or self.name)


class TestInputs(_FeatureRows):
    """The features of the test rows, without their labels."""

    __test__ = False


@dataclass
class Selection:
    """The outcome of a validation selection: every candidate's score and the best one."""

    best: Any
    best_score: float
    scores: list[tuple[Any, float]]


class Splits:
    """Train / val / test of one :class:`ProbeData`, with the test labels sealed.

    ``ledger`` is the test-use ledger (default: the process-wide one);
    ``allow_test_reuse`` silences its warning for a deliberate re-run (records still
    carry ``test_reuse``).
    """

    def __init__(self, data: ProbeData, *, ledger: ledger_mod.TestLedger | None = None, allow_test_reuse: bool = False) -> None:
        where = data.provenance.get("store_path") or data.dataset or "data"
        check_patient_split(data.patients, data.split, str(where))
        test = data.split == "test"
        self._test_rows = np.flatnonzero(test)
        self._test_labels = data.labels[self._test_rows].copy()
        self._test_patients = data.patients[self._test_rows].copy()
        public_labels = data.labels.copy()
        public_labels[test] = np.nan
        self._data = dataclasses.replace(data, labels=public_labels)
        self._selecting = 0
        self._scored: set[Hashable] = set()
        self._uses: dict[Hashable, ledger_mod.TestUse] = {}
        self._ledger = ledger if ledger is not None else ledger_mod.LEDGER
        self._allow_reuse = bool(allow_test_reuse)
        last_cls = data.blocks.get(f"cls/{data.layers[-1]}") if data.layers else None
        self._where = ledger_mod.where_of(
            data.provenance,
            data.ids[self._test_rows],
            self._test_patients,
            self._test_labels,
            None if data.provenance.get("store_key") or last_cls is None else last_cls[self._test_rows],
        )
        self.task = data.task
        self.label_names = list(data.label_names)
        self.dataset = data.dataset
        if self._test_rows.size == 0:
            raise ProbeError(f"{data.dataset or 'store'}: no test rows; nothing to score")
        if data.rows("train").size == 0:
            raise ProbeError(f"{data.dataset or 'store'}: no train rows; nothing to fit")

    # ---- labelled, non-test views -----------------------------------------------------------
    @property
    def has_val(self) -> bool:
        return bool(self._data.rows("val").size)

    def view(self, name: str) -> SplitView:
        if "test" in name.split("+"):
            raise SealedSplitError(
                "test labels are sealed: use Splits.test_inputs() for features and "
                "Splits.score_test_once() to score a final result"
            )
        if name not in ("train", "val", "train+val"):
            raise ValueError(f"unknown split {name!r}; expected train, val or train+val")
        if name == "val" and not self.has_val:
            raise NoValidationSplit(self._no_val_message())
        return SplitView(self._data, self._data.rows(name), name)

    @property
    def train(self) -> SplitView:
        return self.view("train")

    @property
    def val(self) -> SplitView:
        return self.view("val")

    @property
    def train_val(self) -> SplitView:
        return self.view("train+val")

    @property
    def n_test(self) -> int:
        return int(self._test_rows.size)

    @property
    def layers(self) -> list[str]:
        return list(self._data.layers)

    def _no_val_message(self) -> str:
        return (
            f"{self.dataset or 'store'}: selecting a configuration needs a validation split and this "
            "store has no 'val' rows; featx never selects on test. Give the dataset a val split "
            "(patient-level), or fix the hyper-parameters (e.g. --k for kNN) so no selection is needed"
        )

    # ---- selection with test sealed ----------------------------------------------------------
    @contextmanager
    def selecting(self) -> Iterator[Splits]:
        """Within this block the test split cannot be read or scored."""
        if not self.has_val:
            raise NoValidationSplit(self._no_val_message())
        self._selecting += 1
        try:
            yield self
        finally:
            self._selecting -= 1

    def select(self, candidates: Iterable[Any], score_val: Callable[[Any], float]) -> Selection:
        """Score every candidate on validation (test sealed) and return the best.

        Ties keep the earlier candidate; NaN scores never win.
        """
        results: list[tuple[Any, float]] = []
        with self.selecting():
            for candidate in candidates:
                results.append((candidate, float(score_val(candidate))))
        return self.best_of(results)

    def best_of(self, results: list[tuple[Any, float]]) -> Selection:
        finite = [(c, s) for c, s in results if not math.isnan(s)]
        if not finite:
            raise ProbeError(f"{self.dataset or 'store'}: every candidate scored NaN on validation")
        best, best_score = max(finite, key=lambda cs: cs[1])
        return Selection(best=best, best_score=best_score, scores=results)

    # ---- the one final look at test -------------------------------------------------------------
    def test_inputs(self) -> TestInputs:
        if self._selecting:
            raise SealedSplitError("the test split is sealed while a configuration is being selected")
        return TestInputs(self._data, self._test_rows)

    def score_test_once(
        self,
        name: Hashable,
        predict: Callable[[TestInputs], np.ndarray],
        *,
        setting: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        scorer: Callable[[Any], Any] | None = None,
    ) -> Scored:
        """Predict the test rows with ``predict`` and score them; once per result ``name``.

        The scoring is entered in the test-use ledger under ``setting`` (default: the
        name) and a fingerprint of ``hyperparameters`` and ``seed`` (without them: of
        the predictions themselves); :meth:`test_use` tells what the ledger said.
        ``scorer`` replaces the classification metrics for tasks whose targets are not
        label columns (segmentation masks): it gets the predictions and returns the score.
        """
        predictions = self._claim(name, predict)
        if scorer is not None:
            self._enter(name, setting, hyperparameters, seed, np.asarray(predictions))
            return scorer(predictions)
        scores = self._as_scores(predictions)
        if scores.ndim != 2:
            raise ProbeError(f"predictions have shape {scores.shape}, expected {self._test_labels.shape}")
        self._enter(name, setting, hyperparameters, seed, scores)
        return score(
            self._test_labels,
            scores,
            self._test_patients,
            task=self.task,
            label_names=self.label_names,
            n_boot=n_boot,
            seed=seed,
        )

    def score_test_over_seeds(
        self,
        name: Hashable,
        predictions: list[np.ndarray],
        *,
        setting: str,
        hyperparameters: dict[str, Any],
        n_boot: int = 1000,
        seed: int = 0,
    ) -> Scored:
        """Score the mean over seeds of several test predictions (few-shot), once per ``name``.

        The interval is a bootstrap over seeds and test patients
        (:func:`~featx.evaluation.metrics.score_over_seeds`); the scoring is ledgered like any other.
        """
        if not predictions:
            raise ProbeError("no predictions to aggregate over seeds")
        stacked = self._as_scores(self._claim(name, lambda _inputs: np.stack([np.asarray(p, dtype=np.float64) for p in predictions])))
        self._enter(name, setting, hyperparameters, seed, stacked)
        return score_over_seeds(
            self._test_labels,
            list(stacked),
            self._test_patients,
            task=self.task,
            label_names=self.label_names,
            n_boot=n_boot,
            seed=seed,
        )

    def _claim(self, name: Hashable, predict: Callable[[TestInputs], Any]) -> Any:
        """Mark ``name`` as scored (once) and return its predictions of the test rows."""
        if self._selecting:
            raise SealedSplitError("the test split cannot be scored while a configuration is being selected")
        if name in self._scored:
            raise TestAlreadyScored(f"{name!r} was already scored on test; a final result is scored once")
        self._scored.add(name)
        return predict(self.test_inputs())

    def _as_scores(self, predictions: Any) -> np.ndarray:
        """Class scores of the test rows (one prediction, or several stacked), shape-checked."""
        scores = np.asarray(predictions, dtype=np.float64)
        if scores.shape[-2:] != self._test_labels.shape:
            raise ProbeError(f"predictions have shape {scores.shape}, expected {self._test_labels.shape}")
        return scores

    def _enter(self, name: Hashable, setting: str | None, hyperparameters: dict[str, Any] | None, seed: int, scores: np.ndarray) -> None:
        hyper = dict(hyperparameters or {})
        if hyperparameters is None:
            hyper = {"predictions": hashlib.sha256(np.round(scores, 6).tobytes()).hexdigest()[:16]}
        self._uses[name] = self._ledger.record(
            self._where,
            ledger_mod.what_of(setting or str(name), hyper),
            ledger_mod.fingerprint_of(hyper, seed),
            allow_reuse=self._allow_reuse,
        )

    def test_use(self, name: Hashable) -> ledger_mod.TestUse:
        """What the test-use ledger recorded for the scoring ``name``."""
        if name not in self._uses:
            raise KeyError(f"{name!r} has not been scored on test")
        return self._uses[name]

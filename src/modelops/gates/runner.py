"""Run a gate's Deepchecks checks one by one, each under a deadline, failing closed.

Checks run individually (not as a Deepchecks suite) so that each gets its own deadline and its
own record: a condition not met, an exception inside Deepchecks and a timeout all fail the
gate, each with a reason a reviewer can act on.
"""

from __future__ import annotations

import signal
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from deepchecks.core import CheckResult, ConditionCategory
from deepchecks.core.check_result import CheckFailure
from deepchecks.core.suite import SuiteResult
from deepchecks.tabular import Dataset
from deepchecks.tabular.base_checks import SingleDatasetCheck

from modelops.gates.catalog import CheckSpec, Facts
from modelops.gates.results import CheckRecord, GateResult, gate_status

_MAX_VALUE_CHARS = 300


class CheckTimeout(BaseException):
    """Raised inside a check that ran past its deadline.

    A BaseException, so that Deepchecks' own `except Exception` handlers cannot swallow it.
    """


@dataclass(frozen=True)
class Predictions:
    """Model outputs computed once and shared by every check."""

    train_labels: npt.NDArray[Any]
    test_labels: npt.NDArray[Any]
    train_proba: npt.NDArray[np.float64]
    test_proba: npt.NDArray[np.float64]


@dataclass(frozen=True)
class GateInputs:
    """What the checks of a gate look at."""

    train: Dataset
    test: Dataset
    facts: Facts
    model: Any = None
    predictions: Predictions | None = None
    feature_importance: pd.Series | None = None


@dataclass(frozen=True)
class RunSettings:
    """How checks run: sample size per dataset, deadline per check, displays for HTML."""

    sample_rows: int
    timeout_seconds: float
    with_display: bool


def run_gate(
    name: str,
    specs: Sequence[CheckSpec],
    gate_params: Any,
    inputs: GateInputs,
    settings: RunSettings,
    *,
    html_file: Path | None = None,
) -> GateResult:
    """Run every check of one gate and summarise it; optionally save the full HTML report."""
    records: list[CheckRecord] = []
    results: list[CheckResult | CheckFailure] = []
    for spec in specs:
        spec_records, spec_results = _run_spec(spec, gate_params, inputs, settings)
        records.extend(spec_records)
        results.extend(spec_results)
    if html_file is not None and results:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SuiteResult(f"modelops gate: {name}", results).save_as_html(
                str(html_file), as_widget=False
            )
    return GateResult(
        name=name, mode=gate_params.mode, status=gate_status(records), checks=tuple(records)
    )


def _run_spec(
    spec: CheckSpec, gate_params: Any, inputs: GateInputs, settings: RunSettings
) -> tuple[list[CheckRecord], list[CheckResult | CheckFailure]]:
    def record(dataset: str, status: Any, value: str = "", reason: str = "") -> CheckRecord:
        return CheckRecord(spec.key, spec.title, dataset, "", value, status, reason)

    if spec.key in gate_params.skip:
        return [record("-", "off", reason="left out in params.yaml (skip)")], []
    not_applicable = spec.applies(inputs.facts)
    if not_applicable:
        return [record("-", "not_applicable", reason=not_applicable)], []

    records: list[CheckRecord] = []
    results: list[CheckResult | CheckFailure] = []
    for dataset in _datasets(spec):
        check = None
        try:
            check = spec.build(gate_params, inputs.facts, settings.sample_rows)
            # Deepchecks 0.19 triggers deprecation warnings in scikit-learn and pandas; they say
            # nothing about the data or the model, and must not turn into check errors.
            with warnings.catch_warnings(), _deadline(settings.timeout_seconds):
                warnings.simplefilter("ignore")
                result = _run(check, dataset, inputs, settings.with_display)
        except CheckTimeout:
            records.append(
                record(
                    dataset,
                    "timeout",
                    reason=f"did not finish within {settings.timeout_seconds:g} s "
                    "(gates.runner.check_timeout_seconds); the gate fails closed",
                )
            )
            continue
        except Exception as exc:
            records.append(
                record(
                    dataset,
                    "error",
                    value=_one_line(f"{type(exc).__name__}: {exc}"),
                    reason="the check raised instead of answering; the gate fails closed",
                )
            )
            if check is not None:
                results.append(CheckFailure(check, exc, f" - {dataset}"))
            continue
        results.append(result)
        records.extend(_condition_records(spec, dataset, result))
    return records, results


def _datasets(spec: CheckSpec) -> tuple[str, ...]:
    return {"each": ("train", "test"), "pair": ("train vs test",), "test": ("test",)}[spec.scope]


def _run(check: Any, dataset: str, inputs: GateInputs, with_display: bool) -> CheckResult:
    common: dict[str, Any] = {
        "model": inputs.model,
        "feature_importance": inputs.feature_importance,
        "with_display": with_display,
    }
    predictions = inputs.predictions
    if isinstance(check, SingleDatasetCheck):
        is_train = dataset == "train"
        if predictions is not None:
            common["y_pred"] = predictions.train_labels if is_train else predictions.test_labels
            common["y_proba"] = predictions.train_proba if is_train else predictions.test_proba
        result: CheckResult = check.run(inputs.train if is_train else inputs.test, **common)
    else:
        if predictions is not None:
            common |= {
                "y_pred_train": predictions.train_labels,
                "y_pred_test": predictions.test_labels,
                "y_proba_train": predictions.train_proba,
                "y_proba_test": predictions.test_proba,
            }
        result = check.run(inputs.train, inputs.test, **common)
    if dataset in ("train", "test") and isinstance(check, SingleDatasetCheck):
        result.header = f"{result.get_header()} - {dataset}"
    return result


def _condition_records(spec: CheckSpec, dataset: str, result: CheckResult) -> list[CheckRecord]:
    conditions = result.conditions_results
    if not conditions:
        return [
            CheckRecord(spec.key, spec.title, dataset, "", "", "error", "the check has no result")
        ]
    records = []
    for condition in conditions:
        if condition.category == ConditionCategory.PASS:
            status, reason = "pass", ""
        elif condition.category == ConditionCategory.ERROR:
            status, reason = "error", "the condition could not be evaluated; the gate fails closed"
        else:
            status, reason = "fail", spec.meaning
        records.append(
            CheckRecord(
                check=spec.key,
                title=spec.title,
                dataset=dataset,
                condition=condition.name,
                value=_one_line(condition.details),
                status=status,  # type: ignore[arg-type]
                reason=reason,
            )
        )
    return records


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread only, which the CLI always is)."""

    def expire(signum: int, frame: Any) -> None:
        raise CheckTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_VALUE_CHARS else flat[: _MAX_VALUE_CHARS - 1] + "…"

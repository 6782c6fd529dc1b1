"""Run a gate's Deepchecks checks one by one, each under a deadline, failing closed.

Checks run individually (not as a Deepchecks suite) so that each gets its own deadline and its
own record: a condition not met, an exception inside Deepchecks and a timeout all fail the
gate, each with a reason a reviewer can act on. A judged check (`catalog.CheckSpec.judge`) is
decided from its value and its sample's interval; one Deepchecks cannot run for lack of rows is
inconclusive, with the reason, never failed or passed by accident.

Two things cost time and change no result: a check's display (plotly figures, up to seconds
each) is computed only for a check the HTML report keeps, so with `html_reports: failures` a
check that passed runs without one; and Deepchecks' own process pools (permutation importance in
MultivariateDrift asks for every core) run in this process instead, as each pool's workers
would import scikit-learn and pandas again to score a few thousand rows.
"""

from __future__ import annotations

import logging
import signal
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TypeVar

import joblib  # scikit-learn's own dependency: what Deepchecks runs its pools with
import numpy as np
import numpy.typing as npt
import pandas as pd
from deepchecks.core import BaseCheck, CheckResult, ConditionCategory
from deepchecks.core.check_result import CheckFailure
from deepchecks.core.errors import DeepchecksProcessError, NotEnoughSamplesError
from deepchecks.core.suite import SuiteResult
from deepchecks.tabular import Dataset
from deepchecks.tabular.base_checks import SingleDatasetCheck

from modelops.gates.catalog import CheckSpec, Facts
from modelops.gates.evidence import Evidence, Sizes, records
from modelops.gates.results import CheckRecord, CheckStatus, GateResult, gate_status

if TYPE_CHECKING:
    from modelops.model import Classifier
    from modelops.params.gates import GateMode

_MAX_VALUE_CHARS = 300


class GateSection(Protocol):
    """What the runner reads of any gate's section of `params.gates`; its checks read the rest."""

    @property
    def mode(self) -> GateMode: ...

    @property
    def skip(self) -> Sequence[str]: ...


SectionT = TypeVar("SectionT", bound=GateSection)


class CheckTimeout(BaseException):
    """Raised inside a check that ran past its deadline.

    A BaseException, so that Deepchecks' own `except Exception` handlers cannot swallow it.
    """


@dataclass(frozen=True)
class Predictions:
    """Model outputs computed once and shared by every check."""

    train_labels: npt.NDArray[np.str_]
    test_labels: npt.NDArray[np.str_]
    train_proba: npt.NDArray[np.float64]
    test_proba: npt.NDArray[np.float64]


@dataclass(frozen=True)
class GateInputs:
    """What the checks of a gate look at."""

    train: Dataset
    test: Dataset
    facts: Facts
    sizes: Sizes
    threshold: float = 0.5
    model: Classifier | None = None
    predictions: Predictions | None = None
    feature_importance: pd.Series | None = None


@dataclass(frozen=True)
class RunSettings:
    """How checks run and are decided, and which HTML reports to keep."""

    sample_rows: int
    timeout_seconds: float
    html: str = "failures"
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0
    trusted: tuple[str, ...] = ()
    """Features legitimately that strong (`gates.drift.trusted_features`): never called a leak,
    by the drift gate nor by the model gate's too-good-to-be-true check."""

    @property
    def with_display(self) -> bool:
        return self.html != "never"


def run_gate(
    name: str,
    specs: Sequence[CheckSpec[SectionT]],
    gate_params: SectionT,
    inputs: GateInputs,
    settings: RunSettings,
    *,
    html_file: Path | None = None,
) -> GateResult:
    """Run every check of one gate and summarise it; optionally save its HTML report.

    With `html: failures` the report holds only the checks that did not pass, and is written
    only when there is one: that is what a reviewer opens, at a fraction of the size.
    """
    records: list[CheckRecord] = []
    kept: list[CheckResult | CheckFailure] = []
    every = html_file is not None and settings.html == "always"
    failures = html_file is not None and settings.html == "failures"
    for spec in specs:
        spec_records, ran = _run_spec(name, spec, gate_params, inputs, settings, with_display=every)
        records.extend(spec_records)
        passed = all(r.status in ("pass", "off", "not_applicable") for r in spec_records)
        if every:
            kept.extend(found.result for found in ran)
        elif failures and not passed:
            kept.extend(_displayed(ran, inputs, settings))
    if html_file is not None and kept:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SuiteResult(f"modelops gate: {name}", kept).save_as_html(
                str(html_file), as_widget=False
            )
    return GateResult(
        name=name, mode=gate_params.mode, status=gate_status(records), checks=tuple(records)
    )


@dataclass(frozen=True)
class _Ran:
    """A check's run on one dataset, as the HTML report shows it."""

    dataset: str
    check: BaseCheck
    result: CheckResult | CheckFailure


def _run_spec(
    gate: str,
    spec: CheckSpec[SectionT],
    gate_params: SectionT,
    inputs: GateInputs,
    settings: RunSettings,
    *,
    with_display: bool,
) -> tuple[list[CheckRecord], list[_Ran]]:
    tuned_by = _tuned_by(gate, spec, gate_params)

    def record(dataset: str, status: CheckStatus, value: str = "", reason: str = "") -> CheckRecord:
        return CheckRecord(spec.key, spec.title, dataset, "", value, status, reason, tuned_by)

    if spec.key in gate_params.skip:
        return [record("-", "off", reason="left out in params.yaml (skip)")], []
    not_applicable = spec.applies(inputs.facts)
    if not_applicable:
        return [record("-", "not_applicable", reason=not_applicable)], []
    too_small = spec.too_small(inputs.sizes, gate_params)
    if too_small:
        rows = _rows(_datasets(spec)[0], inputs.sizes)
        return [record(_datasets(spec)[0], "inconclusive", f"{rows} rows", too_small)], []

    records: list[CheckRecord] = []
    results: list[_Ran] = []
    for dataset in _datasets(spec):
        check = None
        try:
            check = spec.build(gate_params, inputs.facts, settings.sample_rows)
            # Deepchecks 0.19 triggers deprecation warnings in scikit-learn and pandas; they say
            # nothing about the data or the model, and must not turn into check errors.
            with warnings.catch_warnings(), _deadline(settings.timeout_seconds):
                warnings.simplefilter("ignore")
                result = _run(check, dataset, inputs, with_display)
                judged = _decide(spec, dataset, result, gate_params, inputs, settings, tuned_by)
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
        except (NotEnoughSamplesError, DeepchecksProcessError) as exc:
            if isinstance(exc, DeepchecksProcessError) and "n_samples" not in str(exc):
                records.append(_error(spec, dataset, exc, tuned_by))
                if check is not None:
                    results.append(_Ran(dataset, check, CheckFailure(check, exc, f" - {dataset}")))
                continue
            rows = _rows(dataset, inputs.sizes)
            records.append(
                record(
                    dataset,
                    "inconclusive",
                    value=f"{rows} rows",
                    reason=f"inconclusive: Deepchecks cannot run this check on {rows} rows "
                    f"({_one_line(str(exc)).split('. ')[0]}); more rows would",
                )
            )
            continue
        except Exception as exc:
            records.append(_error(spec, dataset, exc, tuned_by))
            if check is not None:
                results.append(_Ran(dataset, check, CheckFailure(check, exc, f" - {dataset}")))
            continue
        results.append(_Ran(dataset, check, result))
        records.extend(judged)
    return records, results


def _displayed(
    ran: Sequence[_Ran], inputs: GateInputs, settings: RunSettings
) -> list[CheckResult | CheckFailure]:
    """The checks' results again, with their display, for the HTML report.

    The same check on the same rows gives the same value (every sample is seeded); should the
    second run raise or overrun its deadline, the report shows the first, without figures.
    """
    shown: list[CheckResult | CheckFailure] = []
    for found in ran:
        result = found.result
        if isinstance(result, CheckResult):
            try:
                with warnings.catch_warnings(), _deadline(settings.timeout_seconds):
                    warnings.simplefilter("ignore")
                    result = _run(found.check, found.dataset, inputs, with_display=True)
            except (CheckTimeout, Exception):
                result = found.result
        shown.append(result)
    return shown


def _decide(
    spec: CheckSpec[SectionT],
    dataset: str,
    result: CheckResult,
    gate_params: SectionT,
    inputs: GateInputs,
    settings: RunSettings,
    tuned_by: str,
) -> list[CheckRecord]:
    """The check's records: its judge's verdicts, else Deepchecks' own conditions."""
    if spec.judge is None:
        return _condition_records(spec, dataset, result, tuned_by)
    predictions = inputs.predictions
    positive = inputs.facts.positive_label
    truth = score = None
    if predictions is not None:
        assert inputs.model is not None, "predictions come with the model that made them"
        column = [str(c) for c in inputs.model.classes_].index(positive)
        score = predictions.test_proba[:, column]
        truth = (inputs.test.label_col.astype(str) == positive).to_numpy(dtype=np.float64)
    evidence = Evidence(
        value=result.value,
        dataset=dataset,
        sizes=inputs.sizes,
        params=gate_params,
        confidence=settings.confidence,
        resamples=settings.resamples,
        seed=settings.seed,
        threshold=inputs.threshold,
        positive_label=positive,
        test_truth=truth,
        test_score=score,
        trusted=settings.trusted,
        whole=spec.whole,
    )
    return records(
        spec.judge(evidence),
        key=spec.key,
        title=spec.title,
        dataset=dataset,
        meaning=spec.meaning,
        tuned_by=tuned_by,
    )


def _error(spec: CheckSpec[SectionT], dataset: str, exc: Exception, tuned_by: str) -> CheckRecord:
    return CheckRecord(
        spec.key,
        spec.title,
        dataset,
        "",
        _one_line(f"{type(exc).__name__}: {exc}"),
        "error",
        "the check raised instead of answering; the gate fails closed",
        tuned_by,
    )


def _tuned_by(gate: str, spec: CheckSpec[SectionT], gate_params: SectionT) -> str:
    """`gates.<gate>.<key> = <value>` for each param that tunes the check."""
    parts = [f"gates.{gate}.{key} = {_param(getattr(gate_params, key))}" for key in spec.tuned_by]
    parts.append(f"gates.{gate}.skip: [{spec.key}]")
    return "; ".join(parts)


def _param(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _rows(dataset: str, sizes: Sizes) -> str:
    if dataset == "train":
        return str(sizes.train_rows)
    if dataset == "test":
        return str(sizes.test_rows)
    return f"{sizes.train_rows} + {sizes.test_rows}"


def _datasets(spec: CheckSpec[SectionT]) -> tuple[str, ...]:
    return {"each": ("train", "test"), "pair": ("train vs test",), "test": ("test",)}[spec.scope]


_DISPLAY_IMPORTANCE_SECONDS = 120  # Deepchecks' default


def _run(check: BaseCheck, dataset: str, inputs: GateInputs, with_display: bool) -> CheckResult:
    with (
        joblib.parallel_config(backend="sequential"),
        _errors_only(logging.getLogger("deepchecks")),
    ):
        return _run_check(check, dataset, inputs, with_display)


@contextmanager
def _errors_only(logger: logging.Logger) -> Iterator[None]:
    """Deepchecks logs what it skipped (an importance not computed): the gate's record says
    what was decided, so only its errors reach the terminal."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_check(
    check: BaseCheck, dataset: str, inputs: GateInputs, with_display: bool
) -> CheckResult:
    common: dict[str, object] = {
        "model": inputs.model,
        "feature_importance": inputs.feature_importance,
        "with_display": with_display,
        # The evaluate stage's importance is given; the one Deepchecks would still compute is
        # MultivariateDrift's domain classifier's (10 permutations of every feature), which only
        # orders the report's plots: computed when there is a report to show it in.
        "feature_importance_timeout": _DISPLAY_IMPORTANCE_SECONDS if with_display else 0,
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


def _condition_records(
    spec: CheckSpec[SectionT], dataset: str, result: CheckResult, tuned_by: str
) -> list[CheckRecord]:
    conditions = result.conditions_results
    if not conditions:
        return [
            CheckRecord(
                spec.key, spec.title, dataset, "", "", "error", "the check has no result", tuned_by
            )
        ]
    records = []
    status: CheckStatus
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
                status=status,
                reason=reason,
                tuned_by=tuned_by,
            )
        )
    return records


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread only, which the CLI always is)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CheckTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_OUR_TERMS = (
    # Deepchecks' messages name its own arguments; say which params.yaml key is meant instead.
    ("Use the 'min_samples' parameter to change this requirement.", ""),
    ("Try increasing n_samples or supply additional features.", "More rows would help."),
    ("increasing n_samples", "raising gates.runner.sample_rows"),
    ("n_samples", "gates.runner.sample_rows"),
)


def _one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    for theirs, ours in _OUR_TERMS:
        flat = flat.replace(theirs, ours).strip()
    return flat if len(flat) <= _MAX_VALUE_CHARS else flat[: _MAX_VALUE_CHARS - 1] + "…"

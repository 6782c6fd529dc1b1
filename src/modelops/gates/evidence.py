"""What a judge sees and says: the data's sizes, the evidence of one check, and verdicts.

A judge (`judges`) decides one Deepchecks check from its value and the interval its sample
supports. This module holds what every judge shares: the sizes of the data it looked at, the
evidence it reads, the verdict it returns, the records a verdict becomes, and the wording of a
rate limit and of "inconclusive: about N rows would settle it". Pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from modelops.gates.results import CheckRecord
from modelops.statistics import (
    Decision,
    Interval,
    decide_at_least,
    decide_at_most,
    decide_severe_at_most,
    leans_beyond_limit,
    rows_to_show_rate_below,
    wilson,
)

_SHOWN = 3
"""Columns named in one record (the worst first)."""
MIN_POSITIVES = 20
"""Positive test rows below which a bootstrap interval of F1 is not trusted (it degenerates)."""
OUTLIER_ROWS = 3000
"""Rows outlier detection (LoOP, quadratic) samples at most: 10,000 rows take 8.5 s, 3,000 rows
0.9 s, with the same outlier share on the default data."""
WHOLE_ROWS = 10_000_000
"""Rows a whole-data check reads at most (Deepchecks' own default for those checks)."""

GateParamsT = TypeVar("GateParamsT")
"""A gate's section of `params.gates` (`DataGateParams`...): what its judges read limits from."""


@dataclass(frozen=True)
class Sizes:
    """Rows the check looked at, and what the judges need to know about them."""

    train_rows: int
    test_rows: int
    train_positives: int
    test_positives: int
    categories: Mapping[str, int] = field(default_factory=dict)
    """Distinct values per categorical feature, over train and test."""
    singletons: Mapping[str, int] = field(default_factory=dict)
    """Per categorical feature: values seen exactly once in train (Good-Turing's unseen mass)."""
    distinct: Mapping[str, int] = field(default_factory=dict)
    """Per column: distinct values over train and test together."""
    top_share: Mapping[str, float] = field(default_factory=dict)
    """Per column: the share of its most common value over train and test together."""
    order_auc: Mapping[str, float] = field(default_factory=dict)
    """For the id and the timestamp: ROC AUC of their order against the label in train."""
    train_total: int = 0
    """All train rows, for the checks that read every row (0: the same as train_rows)."""
    test_total: int = 0
    """All test rows, likewise."""
    separation: Mapping[str, float] = field(default_factory=dict)
    """Per feature: how well it alone separates the classes (`inputs.youden_j`), over every
    train and test row, each scored by a rule learned on the other split."""
    test_separation: Mapping[str, float] = field(default_factory=dict)
    """Per feature: the same on the test rows only, to set beside the model's."""
    all_positives: int = 0
    """Positive rows over every train and test row."""
    all_negatives: int = 0
    """Negative rows over every train and test row."""

    def rows(self, dataset: str, *, whole: bool = False) -> int:
        """Rows a check of `dataset` read: the sample, or every row for a whole-data check."""
        if dataset == "train":
            return (
                min(self.train_total or self.train_rows, WHOLE_ROWS) if whole else self.train_rows
            )
        return min(self.test_total or self.test_rows, WHOLE_ROWS) if whole else self.test_rows


@dataclass(frozen=True)
class Evidence(Generic[GateParamsT]):
    """What a judge sees: the result's value, the sizes, settings, and shared predictions."""

    value: Any
    """Deepchecks' `CheckResult.value`: a number, a dict or a DataFrame, by check (untyped)."""
    dataset: str
    sizes: Sizes
    params: GateParamsT
    confidence: float
    resamples: int
    seed: int
    threshold: float
    positive_label: str = "1"
    test_truth: npt.NDArray[np.float64] | None = None
    test_score: npt.NDArray[np.float64] | None = None
    trusted: tuple[str, ...] = ()
    whole: bool = False
    """The check read every row, not the sample."""

    def rows(self) -> int:
        """Rows of the dataset this record is about (test for pairs)."""
        return self.sizes.rows(self.dataset, whole=self.whole)


@dataclass(frozen=True)
class Verdict:
    """One decision: what was measured, the decision, and why (or what would settle it)."""

    decision: Decision
    condition: str
    value: str
    reason: str = ""
    leans_fail: bool = False
    """Inconclusive, its estimate already beyond the limit (`statistics.leans_beyond_limit`)."""


Judge: TypeAlias = Callable[[Evidence[GateParamsT]], list[Verdict]]
"""Decides one check of the gate whose params it reads."""


def records(
    verdicts: Iterable[Verdict], *, key: str, title: str, dataset: str, meaning: str, tuned_by: str
) -> list[CheckRecord]:
    """Check records from a judge's verdicts (a failure carries what it means)."""
    return [
        CheckRecord(
            check=key,
            title=title,
            dataset=dataset,
            condition=verdict.condition,
            value=verdict.value,
            status=verdict.decision,
            reason=meaning if verdict.decision == "fail" and not verdict.reason else verdict.reason,
            tuned_by=tuned_by,
            leans_fail=verdict.leans_fail,
        )
        for verdict in verdicts
    ]


# Verdicts and their wording ------------------------------------------------------------------


def rate_at_most(
    events: int,
    rows: int,
    limit: float,
    *,
    z: float,
    what: str,
    unit: str,
    severe: str = "",
) -> Verdict:
    """At most `limit` of `rows` may have the property (`what`, counted in `unit`).

    With `severe` (the way out, for a defect that must not wait for more data), a rate whose
    estimate is beyond the limit fails at any sample size (`statistics.decide_severe_at_most`).
    """
    found = wilson(events, rows, z=z)
    decision = decide_severe_at_most(found, limit) if severe else decide_at_most(found, limit)
    value = f"{events} of {rows} {unit} {what}: {found.text(percent=True)}"
    reason = ""
    if decision == "fail" and severe:
        reason = (
            f"{found.estimate:.1%} of {unit} {what}, beyond {limit:g}: a defect this severe "
            f"fails at any sample size; {severe}"
        )
    elif decision == "inconclusive":
        needed = rows_to_show_rate_below(found.estimate, limit, z=z)
        more = f"about {needed} {unit} at this rate would" if needed else "more rows would"
        reason = (
            f"inconclusive: {rows} {unit} cannot show the share {what} is under {limit:g} "
            f"({found.text(percent=True)}); {more}"
        )
    return Verdict(
        decision,
        f"share {what} at most {limit:g}",
        value,
        reason,
        leans_fail=leans_beyond_limit(found, limit, at_most=True),
    )


def at_least(
    found: Interval,
    limit: float,
    *,
    condition: str,
    value: str,
    rows: int,
    what: str,
    unit: str = "test rows",
) -> Verdict:
    """`found` must reach `limit`: pass when its whole interval does, fail when none of it does."""
    decision = decide_at_least(found, limit)
    reason = ""
    if decision == "inconclusive":
        reason = needs_rows(
            f"{rows} {unit} cannot tell whether {what} reaches {limit:g}",
            rows,
            found,
            limit,
            unit=unit,
        )
    return Verdict(
        decision,
        condition,
        value,
        reason,
        leans_fail=leans_beyond_limit(found, limit, at_most=False),
    )


def needs_rows(sentence: str, rows: int, found: Interval, limit: float, *, unit: str) -> str:
    """'inconclusive: <sentence> (<interval>); about N <unit> would' (width falls as 1/sqrt n)."""
    margin = abs(found.estimate - limit)
    half = (found.high - found.low) / 2.0
    if margin <= 0 or not math.isfinite(half) or half <= 0:
        return f"inconclusive: {sentence} ({found.text()}); the estimate sits on the limit"
    needed = math.ceil(rows * (half / margin) ** 2)
    return f"inconclusive: {sentence} ({found.text()}); about {needed} {unit} would"


_ORDER: tuple[Decision, ...] = ("fail", "inconclusive", "pass")


def worst(
    per_item: Mapping[str, Verdict], condition: str, *, order: tuple[Decision, ...] = _ORDER
) -> Verdict:
    """One verdict for many columns: the worst decision, naming the columns that have it."""
    if not per_item:
        return Verdict("pass", condition, "nothing to check")
    decision = next(d for d in order if any(v.decision == d for v in per_item.values()))
    # The items that lean toward failing first: they are what a reviewer must look at.
    named = sorted(
        ((item, v) for item, v in per_item.items() if v.decision == decision),
        key=lambda pair: not pair[1].leans_fail,
    )
    shown = "; ".join(f"'{item}': {v.value}" for item, v in named[:_SHOWN])
    more = f"; and {len(named) - _SHOWN} more" if len(named) > _SHOWN else ""
    if decision == "pass":
        return Verdict("pass", condition, f"all {len(per_item)} within the limit")
    return Verdict(
        decision,
        condition,
        shown + more,
        named[0][1].reason,
        leans_fail=any(v.leans_fail for _, v in named),
    )

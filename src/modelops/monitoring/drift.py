"""Production drift against the reference profile, window by window (pure).

One definition of drift from pull request to production: the statistics and limits are those
of the pull-request drift gate (`gates.drift`): Kolmogorov-Smirnov for a numeric feature
(`max_numeric_drift`), Cramér's V for a categorical one (`max_categorical_drift`), KS for the
score (`gates.model.max_prediction_drift`), at `gates.statistics.confidence`, the features of
one window sharing the error rate (Bonferroni). Production sees a feature only through the
profile's bins, so its KS is the largest CDF gap at the profile's cuts (never larger than the
exact KS; the DKW bound on both CDFs holds at any set of points, so the interval stays valid).
Cramér's V is the number Deepchecks gives the gate on the same two samples (training rows
against the window's, rare categories pooled, both scaled to one size:
`modelops.statistics.cramers_v`), so it reads the same on a window of a thousand rows or of a
million; its interval is the population value's, narrowing as both samples grow. The training
side counts `profile.train_rows` rows (the test set's rows for the score).

A criterion is a `breach` only when its interval is beyond the limit, `ok` when it is within,
and `inconclusive` when the window is too small to say (with the rows it would need).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelops_contract import MISSING, OTHER, UNSEEN, bin_labels

from modelops.params import RETRAIN_CRITERIA
from modelops.statistics import (
    MIN_EXPECTED_ROWS,
    CramersV,
    Interval,
    category_table,
    chi_square_reach,
    cramers_v,
    decide_at_most,
    ks_interval,
    ks_rows_needed,
    wilson,
    z_value,
)
from modelops.telemetry.profile import (
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
)

Status: TypeAlias = Literal["breach", "ok", "inconclusive", "dismissed"]
CRITERIA = RETRAIN_CRITERIA
"""Every criterion a window is judged on, in report order."""
_MOST_ROWS = 1e9
"""The largest window the rows-needed search considers."""


@dataclass(frozen=True)
class Window:
    """What the served model saw over one window, as counts (from Prometheus)."""

    end: float
    """Seconds since the epoch."""
    seconds: float
    features: Mapping[str, Mapping[str, float]]
    """feature -> profile bin label (b00..., a category, __other__, __unseen__, __missing__)."""
    scores: Mapping[str, float]
    """Rows per profile score bin (b00...)."""
    grid: Sequence[tuple[float, float]] = ()
    """Cumulative score buckets on the server's fixed grid: (upper bound, rows)."""
    cells: Mapping[str, float] | None = None
    """Feedback rows per confusion cell (true_positive...), at the deployment's threshold."""
    labelled: Mapping[str, Sequence[float]] | None = None
    """True class -> feedback rows per profile score bin."""
    devices: Mapping[str, float] | None = None
    """Edge: rows per device that reported rows in the window (None where no devices report)."""


@dataclass(frozen=True)
class Limits:
    """The thresholds a window is judged against (from params: `Limits.from_params`)."""

    max_numeric_drift: float
    max_categorical_drift: float
    max_score_drift: float
    max_missing_increase: float
    max_unseen_rate: float
    min_rows: int
    recall_max_drop: float
    precision_max_drop: float
    min_labels: int
    max_calibration_gap: float
    confidence: float


@dataclass(frozen=True)
class Finding:
    """One criterion on one subject (a feature, the score, a metric) in one window."""

    criterion: str
    subject: str
    status: Status
    statistic: str
    value: Interval | None
    limit: float | None
    rows: int
    reference_rows: int
    reason: str

    def text(self) -> str:
        """'KS 0.31 [0.27, 0.35] over 0.2 on 5000 rows'-style summary."""
        value = f"{self.statistic} {self.value.text()}" if self.value else self.statistic
        limit = f", limit {self.limit:g}" if self.limit is not None else ""
        return f"{value}{limit} on {self.rows} rows"


def judge_drift(profile: ReferenceProfile, window: Window, limits: Limits) -> list[Finding]:
    """Every input criterion of one window: per-feature drift, score drift, missing, unseen."""
    features = len(profile.numeric) + len(profile.categorical)
    findings = [
        *(_numeric(p, window, limits, profile.train_rows, tests=features) for p in profile.numeric),
        *(
            _categorical(p, window, limits, profile.train_rows, tests=features)
            for p in profile.categorical
        ),
        _score(profile, window, limits),
    ]
    z = z_value(limits.confidence, tests=max(features, 1))
    findings.extend(_missing(p, window, limits, z=z) for p in profile.numeric)
    findings.extend(_missing(p, window, limits, z=z) for p in profile.categorical)
    categorical = max(len(profile.categorical), 1)
    z_unseen = z_value(limits.confidence, tests=categorical)
    findings.extend(_unseen(p, window, limits, z=z_unseen) for p in profile.categorical)
    return findings


def binned_ks(expected: Sequence[float], counts: Sequence[float]) -> float:
    """The largest gap between the two CDFs at the bins' upper bounds."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    gap, reference, observed = 0.0, 0.0, 0.0
    for share, count in zip(expected, counts, strict=True):
        reference += share
        observed += count / total
        gap = max(gap, abs(reference - observed))
    return gap


def _numeric(
    profile: NumericProfile, window: Window, limits: Limits, train_rows: int, *, tests: int
) -> Finding:
    counts = window.features.get(profile.name, {})
    observed = [counts.get(label, 0.0) for label in profile.bins]
    rows = round(sum(observed))
    reference = _reference_rows(profile.missing, train_rows)
    if rows < limits.min_rows:
        return _too_few("feature_drift", profile.name, "KS", rows, reference, limits)
    statistic = binned_ks(profile.shares, observed)
    found = ks_interval(statistic, reference, rows, confidence=limits.confidence, tests=tests)
    decision = decide_at_most(found, limits.max_numeric_drift)
    reason = ""
    if decision == "inconclusive":
        share = reference / max(reference + rows, 1)
        needed = ks_rows_needed(
            limits.max_numeric_drift,
            share=min(max(share, 0.01), 0.99),
            confidence=limits.confidence,
            tests=tests,
        )
        reason = _more_rows(needed, rows + reference)
    return Finding(
        "feature_drift",
        profile.name,
        status_of(decision),
        "KS",
        found,
        limits.max_numeric_drift,
        rows,
        reference,
        reason,
    )


def _categorical(
    profile: CategoricalProfile, window: Window, limits: Limits, train_rows: int, *, tests: int
) -> Finding:
    counts = window.features.get(profile.name, {})
    observed = {label: counts.get(label, 0.0) for label in (*profile.categories, OTHER, UNSEEN)}
    rows = round(sum(observed.values()))
    reference = _reference_rows(profile.missing, train_rows)
    statistic = "Cramér's V"
    if rows < limits.min_rows:
        return _too_few("feature_drift", profile.name, statistic, rows, reference, limits)
    training = reference_counts(profile, reference)
    found = cramers_v(category_table(training, observed, pooled=(OTHER,)))
    limit = limits.max_categorical_drift
    if not found.decidable:
        return Finding(
            "feature_drift",
            profile.name,
            "inconclusive",
            statistic,
            None,
            limit,
            rows,
            reference,
            f"'{found.sparsest}' expects {found.expected:.1f} rows in the smaller sample, fewer "
            f"than the {MIN_EXPECTED_ROWS:g} the interval needs",
        )
    reach = chi_square_reach(found.columns - 1, confidence=limits.confidence, tests=tests)
    value = found.interval(reach)
    decision = decide_at_most(value, limit)
    reason = ""
    if decision == "inconclusive":
        reason = _window_rows_to_decide(training, observed, reach, limit, rows)
    return Finding(
        "feature_drift",
        profile.name,
        status_of(decision),
        statistic,
        value,
        limit,
        rows,
        reference,
        reason,
    )


def reference_counts(profile: CategoricalProfile, rows: int) -> dict[str, float]:
    """The training rows with a value, per category as the server labels them: the named
    ones from their shares, `other` holding the rest (every category not named)."""
    named = {
        label: float(round(share * rows))
        for label, share in zip(profile.categories, profile.shares, strict=True)
    }
    return {**named, OTHER: max(rows - sum(named.values()), 0.0)}


def _window_rows_to_decide(
    training: Mapping[str, float],
    observed: Mapping[str, float],
    reach: float,
    limit: float,
    rows: int,
) -> str:
    """How many more window rows, with the same shares, would decide Cramér's V; the training
    set bounds how narrow the interval can get, so sometimes none would."""

    def found(factor: float) -> CramersV:
        more = {label: count * factor for label, count in observed.items()}
        return cramers_v(category_table(training, more, pooled=(OTHER,)))

    def decides(factor: float) -> bool:
        return decide_at_most(found(factor).interval(reach), limit) != "inconclusive"

    most = _MOST_ROWS / max(rows, 1)
    if not decides(most):
        bound = found(most).interval(reach)
        return (
            f"the {sum(training.values()):.0f} training rows bound Cramér's V only to "
            f"[{bound.low:.3f}, {bound.high:.3f}] however large the window: a larger training "
            "set would settle it"
        )
    low, high = 1.0, 2.0
    while high < most and not decides(high):
        low, high = high, high * 2
    while high - low > 0.01 * low:
        middle = (low + high) / 2
        low, high = (low, middle) if decides(middle) else (middle, high)
    return f"about {max(round(rows * (high - 1)), 1)} more rows would settle it"


def _score(profile: ReferenceProfile, window: Window, limits: Limits) -> Finding:
    score = profile.score
    labels = bin_labels(len(score.shares))
    observed = [window.scores.get(label, 0.0) for label in labels]
    rows = round(sum(observed))
    if rows < limits.min_rows:
        return _too_few("score_drift", "score", "KS", rows, score.rows, limits)
    statistic = binned_ks(score.shares, observed)
    found = ks_interval(statistic, score.rows, rows, confidence=limits.confidence)
    decision = decide_at_most(found, limits.max_score_drift)
    reason = ""
    if decision == "inconclusive":
        reason = (
            f"{score.rows} test rows bound the reference CDF only to "
            f"±{found.high - found.estimate:.3f}: a larger test set would settle it"
        )
    return Finding(
        "score_drift",
        "score",
        status_of(decision),
        "KS",
        found,
        limits.max_score_drift,
        rows,
        score.rows,
        reason,
    )


def _missing(
    profile: NumericProfile | CategoricalProfile, window: Window, limits: Limits, *, z: float
) -> Finding:
    counts = window.features.get(profile.name, {})
    rows = round(sum(counts.values()))
    limit = min(profile.missing + limits.max_missing_increase, 1.0)
    if rows < limits.min_rows:
        return _too_few("missing_values", profile.name, "missing share", rows, 0, limits)
    missing = round(counts.get(MISSING, 0.0))
    found = wilson(missing, rows, z=z)
    decision = decide_at_most(found, limit)
    return Finding(
        "missing_values",
        profile.name,
        status_of(decision),
        f"missing share (training {profile.missing:.3f})",
        found,
        round(limit, 6),
        rows,
        0,
        "" if decision != "inconclusive" else "more rows would tell",
    )


def _unseen(profile: CategoricalProfile, window: Window, limits: Limits, *, z: float) -> Finding:
    counts = window.features.get(profile.name, {})
    present = round(sum(v for k, v in counts.items() if k != MISSING))
    if present < limits.min_rows:
        return _too_few("unseen_categories", profile.name, "unseen share", present, 0, limits)
    unseen = round(counts.get(UNSEEN, 0.0))
    found = wilson(unseen, present, z=z)
    decision = decide_at_most(found, limits.max_unseen_rate)
    return Finding(
        "unseen_categories",
        profile.name,
        status_of(decision),
        "unseen share",
        found,
        limits.max_unseen_rate,
        present,
        0,
        "" if decision != "inconclusive" else "more rows would tell",
    )


def _reference_rows(missing: float, train_rows: int) -> int:
    return max(round(train_rows * (1.0 - missing)), 1)


def _too_few(
    criterion: str, subject: str, statistic: str, rows: int, reference: int, limits: Limits
) -> Finding:
    return Finding(
        criterion,
        subject,
        "inconclusive",
        statistic,
        None,
        None,
        rows,
        reference,
        f"{rows} rows in the window, fewer than the {limits.min_rows} it needs "
        "(monitoring.objectives.feature_drift.min_rows)",
    )


def _more_rows(needed: int | None, have: int) -> str:
    if needed is None:
        return "the statistic sits at the limit: no number of rows settles it"
    return f"about {max(needed - have, 1)} more rows would settle it"


def status_of(decision: str) -> Status:
    """A gate decision as a window's status."""
    if decision == "fail":
        return "breach"
    return "ok" if decision == "pass" else "inconclusive"

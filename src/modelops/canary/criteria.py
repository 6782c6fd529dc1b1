"""The canary judge's criteria (pure): each one a test of canary against stable.

Each criterion is a confidence sequence on a difference between the tracks
(`modelops.canary.stats`), compared with the tolerance `canary:` in params.yaml gives it, or,
for the inputs, the pull-request drift gate's (`gates.drift`: Kolmogorov-Smirnov for a numeric
feature's bins, the gate's own Cramér's V for a categorical one, stable as the reference):

- the whole interval inside the tolerance: **pass**;
- the whole interval beyond it: **fail**;
- otherwise **inconclusive**: not enough data to tell yet.

`select` says which criteria a step runs (and why the others are skipped); `canary.judge`
turns their findings into a decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from modelops_contract import (
    CELLS,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    MISSING,
    OTHER,
    TRUE_POSITIVE,
    UNSEEN,
)

from modelops import statistics
from modelops.canary import stats
from modelops.canary.evidence import Evidence, TrackCounts
from modelops.canary.stats import Interval
from modelops.params import CanaryParams, DriftGateParams
from modelops.statistics import MIN_EXPECTED_ROWS, category_table, cramers_v

Status: TypeAlias = Literal["pass", "fail", "inconclusive", "skipped"]


@dataclass(frozen=True)
class Finding:
    """One criterion's result, with everything needed to check it by hand."""

    criterion: str
    status: Status
    statistic: str
    canary_samples: float
    stable_samples: float
    estimate: float
    low: float
    high: float
    threshold: str
    alpha: float
    query: str
    reason: str
    blocking: bool = True
    """Whether an inconclusive result holds the step (quality does only when required)."""


@dataclass(frozen=True)
class Criterion:
    """A criterion before it sees data: its name, what it needs, and how it is computed."""

    criterion: str
    statistic: str
    threshold: str
    query: str
    run: Callable[[TrackCounts, TrackCounts, float, float], Finding]


def run_all(
    tests: Sequence[Criterion],
    canary: TrackCounts,
    stable: TrackCounts,
    alpha: float,
    planned: float,
) -> list[Finding]:
    """Every test's finding on these counts, at `alpha` each."""
    return [test.run(canary, stable, alpha, planned) for test in tests]


def select(
    evidence: Evidence,
    params: CanaryParams,
    business: Mapping[str, float] | None,
    drift: DriftGateParams,
) -> tuple[list[Criterion], list[Finding]]:
    """Every test this step runs, and the findings of what is skipped (with the reason);
    `drift` holds the limits the inputs are judged with (the pull-request drift gate's)."""
    tests: list[Criterion] = []
    skipped: list[Finding] = []
    q = evidence.queries

    def skip(criterion: str, reason: str, query: str = "") -> None:
        skipped.append(
            Finding(
                criterion, "skipped", "", 0, 0, math.nan, math.nan, math.nan, "", 0, query, reason
            )
        )

    if params.errors.skip:
        skip("errors", params.errors.skip)
    else:
        tests.append(_errors_test(params, q.get("requests", "")))
    if params.latency.skip:
        skip("latency", params.latency.skip)
    else:
        for level in params.latency.quantiles:
            tests.append(_latency_test(level, params, q.get("latency", "")))
    if params.scores.skip:
        skip("scores", params.scores.skip)
    elif not evidence.canary.scores and not evidence.stable.scores:
        skip("scores", "no score histogram from either track (the servers run without a profile)")
    else:
        tests.append(_scores_test(params, q.get("scores", "")))
    if params.positive_rate.skip:
        skip("positive rate", params.positive_rate.skip)
    else:
        tests.append(_positive_rate_test(params, q.get("predictions", "")))
    if params.inputs.skip:
        skip("inputs", params.inputs.skip)
    else:
        for name in sorted(set(evidence.canary.bins) | set(evidence.stable.bins)):
            mine, theirs = evidence.canary.bins.get(name), evidence.stable.bins.get(name)
            if mine is None or theirs is None:
                which = "canary" if mine is None else "stable"
                skip(f"inputs: {name}", f"the {which} model does not bin {name}", q.get("bins", ""))
            elif mine != theirs:
                skip(
                    f"inputs: {name}",
                    f"the canary's profile bins {name} differently from stable's (a retrained "
                    "profile), so bin counts are not comparable; the drift alerts watch each "
                    "against its own profile",
                    q.get("bins", ""),
                )
            else:
                labels = set(evidence.canary.features.get(name, {})) | set(
                    evidence.stable.features.get(name, {})
                )
                query = q.get("features", "")
                if categorical(labels):
                    tests.append(_categorical_inputs_test(name, drift, query))
                else:
                    tests.append(_numeric_inputs_test(name, drift, query))
        if not evidence.canary.bins and not evidence.stable.bins:
            skip("inputs", "no feature bins from either track (the servers run without a profile)")
    if evidence.shadow:
        if params.shadow.skip:
            skip("agreement with stable", params.shadow.skip)
        else:
            tests.append(_agreement_test(params, q.get("agreement", "")))
            tests.append(_rank_test(params, q.get("pairs", "")))
    quality = params.quality
    if quality.skip:
        skip("quality", quality.skip)
    else:
        query = q.get("feedback", "")
        tests.append(_quality_test("recall", TRUE_POSITIVE, FALSE_NEGATIVE, params, query))
        tests.append(_quality_test("precision", TRUE_POSITIVE, FALSE_POSITIVE, params, query))
        if quality.max_value_drop is not None and business is not None:
            tests.append(_value_test(quality.max_value_drop, business, params, query))
        elif quality.max_value_drop is not None:
            skip("business value", "monitoring.business is not set: no value per label")
    return tests, skipped


def _finding(
    test: Criterion,
    status: Status,
    samples: tuple[float, float],
    interval: Interval,
    alpha: float,
    reason: str,
    *,
    blocking: bool = True,
) -> Finding:
    return Finding(
        criterion=test.criterion,
        status=status,
        statistic=test.statistic,
        canary_samples=samples[0],
        stable_samples=samples[1],
        estimate=interval.estimate,
        low=interval.low,
        high=interval.high,
        threshold=test.threshold,
        alpha=alpha,
        query=test.query,
        reason=reason,
        blocking=blocking,
    )


def _upper_bound_status(interval: Interval, bound: float) -> Status:
    """A quantity that is bad when large: within when all of it is <= bound."""
    if interval.low > bound:
        return "fail"
    if interval.high <= bound:
        return "pass"
    return "inconclusive"


def _errors_test(params: CanaryParams, query: str) -> Criterion:
    bound = params.errors.max_increase

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        interval = stats.proportion_difference(
            (canary.server_errors, canary.requests),
            (stable.server_errors, stable.requests),
            alpha=alpha,
            planned=planned,
        )
        status = _upper_bound_status(interval, bound)
        reason = (
            f"canary errors {_share(canary.server_errors, canary.requests)}, stable "
            f"{_share(stable.server_errors, stable.requests)}"
        )
        return _finding(test, status, (canary.requests, stable.requests), interval, alpha, reason)

    test = Criterion(
        "errors",
        "server-error ratio, canary minus stable",
        f"<= {bound:g}",
        query,
        run,
    )
    return test


def _latency_test(level: float, params: CanaryParams, query: str) -> Criterion:
    bound = params.latency.max_ratio
    name = f"latency p{level * 100:g}"

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        samples = (_total(canary.latency), _total(stable.latency))
        if not all(samples):
            interval = Interval(math.nan, 0.0, math.inf)
        else:
            interval = stats.quantile_ratio(
                _split(canary.latency), _split(stable.latency), level, alpha=alpha, planned=planned
            )
        status = _upper_bound_status(interval, bound)
        first = stats.histogram_quantile(*_split(canary.latency), level) if samples[0] else math.nan
        second = (
            stats.histogram_quantile(*_split(stable.latency), level) if samples[1] else math.nan
        )
        reason = f"canary p{level * 100:g} {_ms(first)}, stable {_ms(second)}"
        return _finding(test, status, samples, interval, alpha, reason)

    test = Criterion(
        name, f"p{level * 100:g} latency, canary over stable", f"<= {bound:g}x", query, run
    )
    return test


def _scores_test(params: CanaryParams, query: str) -> Criterion:
    bound = params.scores.max_psi

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        first, second = _aligned(_buckets(canary.scores), _buckets(stable.scores))
        interval = stats.population_stability(first, second, alpha=alpha, planned=planned)
        status = _upper_bound_status(interval, bound)
        reason = (
            f"chi-square distance {interval.estimate:.3f} (PSI {stats.psi(first, second):.3f}) "
            f"over {len(first)} score buckets"
        )
        samples = (sum(first), sum(second))
        return _finding(test, status, samples, interval, alpha, reason)

    test = Criterion(
        "scores",
        "chi-square distance of the score distribution (PSI to second order)",
        f"<= {bound:g}",
        query,
        run,
    )
    return test


def _positive_rate_test(params: CanaryParams, query: str) -> Criterion:
    bound = params.positive_rate.max_difference

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        interval = stats.proportion_difference(
            (canary.positive, canary.predicted),
            (stable.positive, stable.predicted),
            alpha=alpha,
            planned=planned,
        )
        if interval.low > bound or interval.high < -bound:
            status: Status = "fail"
        elif -bound <= interval.low and interval.high <= bound:
            status = "pass"
        else:
            status = "inconclusive"
        reason = (
            f"canary predicts {_share(canary.positive, canary.predicted)} positive, stable "
            f"{_share(stable.positive, stable.predicted)}"
        )
        samples = (canary.predicted, stable.predicted)
        return _finding(test, status, samples, interval, alpha, reason)

    test = Criterion(
        "positive rate",
        "share predicted positive, canary minus stable",
        f"within ±{bound:g}",
        query,
        run,
    )
    return test


_ROUTING = (
    "the same traffic split should see the same inputs (a difference means routing or client "
    "trouble)"
)


def categorical(labels: Collection[str]) -> bool:
    """Whether a feature's bin labels are a categorical feature's: the server counts every
    categorical feature's `other` and `unseen` bins, and a numeric one's are b00, b01, ..."""
    return bool({OTHER, UNSEEN} & set(labels)) or not all(
        _bin_number(label) is not None for label in labels if label != MISSING
    )


def _bin_number(label: str) -> int | None:
    return int(label[1:]) if label[:1] == "b" and label[1:].isdigit() else None


def _numeric_inputs_test(feature: str, drift: DriftGateParams, query: str) -> Criterion:
    bound = drift.max_numeric_drift

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        mine, theirs = canary.features.get(feature, {}), stable.features.get(feature, {})
        labels = sorted(
            (label for label in set(mine) | set(theirs) if label != MISSING),
            key=lambda label: _bin_number(label) or 0,
        )
        first = [mine.get(label, 0.0) for label in labels]
        second = [theirs.get(label, 0.0) for label in labels]
        interval = stats.cdf_distance(first, second, alpha=alpha, planned=planned)
        status = _upper_bound_status(interval, bound)
        reason = (
            f"largest CDF gap at {feature}'s {max(len(labels) - 1, 0)} bin edges; {_ROUTING}"
            if not math.isnan(interval.estimate)
            else "no rows with a value on a track yet"
        )
        return _finding(test, status, (sum(first), sum(second)), interval, alpha, reason)

    test = Criterion(
        f"inputs: {feature}",
        f"Kolmogorov-Smirnov distance of {feature} at the profile's bin edges, canary against "
        "stable",
        f"<= {bound:g} (gates.drift.max_numeric_drift)",
        query,
        run,
    )
    return test


def _categorical_inputs_test(feature: str, drift: DriftGateParams, query: str) -> Criterion:
    bound = drift.max_categorical_drift

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        mine, theirs = canary.features.get(feature, {}), stable.features.get(feature, {})
        labels = sorted(label for label in set(mine) | set(theirs) if label != MISSING)
        table = category_table(
            {label: theirs.get(label, 0.0) for label in labels},
            {label: mine.get(label, 0.0) for label in labels},
            pooled=(OTHER,),
        )
        found = cramers_v(table)
        samples = (sum(table.second), sum(table.first))
        if found.worth <= 0:
            interval = Interval(math.nan, 0.0, 1.0)
            return _finding(test, "inconclusive", samples, interval, alpha, "no rows yet")
        # Dimensions fixed by the feature's bins, not by the columns the data keeps apart, so
        # the sequence is the same from look to look.
        reach = stats.radius(max(len(labels) - 1, 1), found.worth / 2, alpha, planned)
        interval = _as_sequence(found.interval(reach))
        if not found.decidable:
            reason = (
                f"'{found.sparsest}' expects {found.expected:.1f} rows on the smaller track, "
                f"fewer than the {MIN_EXPECTED_ROWS:g} the interval needs"
            )
            return _finding(test, "inconclusive", samples, interval, alpha, reason)
        status = _upper_bound_status(interval, bound)
        reason = (
            f"Cramér's V as the drift gate computes it over {found.columns} columns "
            f"(the plug-in value {found.distance:.3f}); {_ROUTING}"
        )
        return _finding(test, status, samples, interval, alpha, reason)

    test = Criterion(
        f"inputs: {feature}",
        f"Cramér's V of {feature}, canary against stable (the drift gate's: both tracks "
        "scaled to one size, rare categories pooled, bias-corrected)",
        f"<= {bound:g} (gates.drift.max_categorical_drift)",
        query,
        run,
    )
    return test


def _as_sequence(interval: statistics.Interval) -> Interval:
    return Interval(interval.estimate, interval.low, interval.high)


def _quality_test(name: str, hit: str, miss: str, params: CanaryParams, query: str) -> Criterion:
    quality = params.quality
    bound = quality.max_recall_drop if name == "recall" else quality.max_precision_drop

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        first = (
            canary.cells.get(hit, 0.0),
            canary.cells.get(hit, 0.0) + canary.cells.get(miss, 0.0),
        )
        second = (
            stable.cells.get(hit, 0.0),
            stable.cells.get(hit, 0.0) + stable.cells.get(miss, 0.0),
        )
        labels = (canary.labels, stable.labels)
        drop = stats.proportion_difference(second, first, alpha=alpha, planned=planned)
        reason = f"canary {name} {_share(*first)}, stable {_share(*second)}"
        if min(labels) < quality.min_labels:
            few = (
                f"{labels[0]:.0f} canary and {labels[1]:.0f} stable labels, fewer than "
                f"min_labels {quality.min_labels}"
            )
            if quality.required:
                return _finding(test, "inconclusive", labels, drop, alpha, f"{few} (required)")
            return _finding(
                test,
                "skipped",
                labels,
                drop,
                alpha,
                f"{few}; not required (quality.required false), so promotion does not wait",
            )
        status = _upper_bound_status(drop, bound)
        return _finding(test, status, labels, drop, alpha, reason, blocking=quality.required)

    test = Criterion(
        name, f"{name} from feedback, stable minus canary", f"drop <= {bound:g}", query, run
    )
    return test


def _value_test(
    bound: float, values: Mapping[str, float], params: CanaryParams, query: str
) -> Criterion:
    quality = params.quality

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        def pairs(counts: TrackCounts) -> list[tuple[float, float]]:
            return [(values[cell], counts.cells.get(cell, 0.0)) for cell in CELLS]

        labels = (canary.labels, stable.labels)
        drop = stats.mean_difference(pairs(stable), pairs(canary), alpha=alpha, planned=planned)
        if min(labels) < quality.min_labels:
            status: Status = "inconclusive" if quality.required else "skipped"
            reason = f"fewer than min_labels {quality.min_labels} labels on a track"
            return _finding(test, status, labels, drop, alpha, reason)
        status = _upper_bound_status(drop, bound)
        reason = f"value per label drop {drop.estimate:.4g}"
        return _finding(test, status, labels, drop, alpha, reason, blocking=quality.required)

    test = Criterion(
        "business value",
        "business value per label, stable minus canary",
        f"drop <= {bound:g}",
        query,
        run,
    )
    return test


def _agreement_test(params: CanaryParams, query: str) -> Criterion:
    bound, required = params.shadow.min_agreement, params.shadow.required

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        agree, differ = canary.agreement
        compared = agree + differ
        share = stats.proportion(agree, compared, alpha=alpha, planned=planned)
        status = _lower_bound_status(share, bound)
        reason = (
            f"the shadow classified {_share(agree, compared)} of the rows as stable did"
            if compared
            else "no feedback with stable's answer reached the shadow yet"
        )
        return _finding(test, status, (compared, compared), share, alpha, reason, blocking=required)

    test = Criterion(
        "agreement with stable",
        "share of rows classified as stable did",
        f">= {bound:g}",
        query,
        run,
    )
    return test


def _rank_test(params: CanaryParams, query: str) -> Criterion:
    bound, required = params.shadow.min_rank_agreement, params.shadow.required

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        concordant, discordant = canary.pairs
        rows = sum(canary.agreement)
        # Pairs share rows, so they are worth far fewer independent samples: half the rows
        # bounds the variance of this U-statistic.
        share = stats.proportion(
            concordant, concordant + discordant, alpha=alpha, planned=planned, samples=rows / 2
        )
        tau = Interval(2 * share.estimate - 1, 2 * share.low - 1, 2 * share.high - 1)
        status = _lower_bound_status(tau, bound)
        reason = (
            f"Kendall's tau {tau.estimate:.3f} over {concordant + discordant:.0f} pairs of rows"
            if concordant + discordant
            else "no pairs of rows compared yet (feedback of several rows with stable's answer)"
        )
        return _finding(test, status, (rows, rows), tau, alpha, reason, blocking=required)

    test = Criterion(
        "rank agreement with stable",
        "Kendall's tau, shadow scores against stable's",
        f">= {bound:g}",
        query,
        run,
    )
    return test


def _lower_bound_status(interval: Interval, bound: float) -> Status:
    """A quantity that is bad when small: within when all of it is >= bound."""
    if math.isnan(interval.estimate):
        return "inconclusive"
    if interval.high < bound:
        return "fail"
    if interval.low >= bound:
        return "pass"
    return "inconclusive"


def _total(histogram: Sequence[tuple[float, float]]) -> float:
    return histogram[-1][1] if histogram else 0.0


def _split(histogram: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    return [b for b, _ in histogram], [c for _, c in histogram]


def _buckets(histogram: Sequence[tuple[float, float]]) -> dict[float, float]:
    """Per-bucket (not cumulative) counts by upper bound."""
    counts, below = {}, 0.0
    for bound, cumulative in histogram:
        counts[bound] = max(cumulative - below, 0.0)
        below = cumulative
    return counts


def _aligned(
    first: Mapping[float, float], second: Mapping[float, float]
) -> tuple[list[float], list[float]]:
    bounds = sorted(set(first) | set(second))
    return [first.get(b, 0.0) for b in bounds], [second.get(b, 0.0) for b in bounds]


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.2%} of {whole:.0f}" if whole > 0 else "none yet"


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "no data"
    return "beyond the last bucket" if math.isinf(seconds) else f"{seconds * 1000:.3g} ms"

"""The canary judge (pure): from what each track did during a step to promote, hold or roll back.

Each criterion is a confidence sequence on a difference between canary and stable
(`modelops.canary.stats`), compared with the tolerance `canary:` in params.yaml gives it:

- the whole interval inside the tolerance: **pass**;
- the whole interval beyond it: **fail**;
- otherwise **inconclusive**: not enough data to tell yet.

The verdict is hold until each track has `min_requests` and the step has soaked `min_soak`;
then roll back when any criterion fails, promote when every judged one passes, and hold
otherwise, saying how much more traffic would decide. `alpha` is split evenly (Bonferroni) over
every test that is not skipped, fixed before any data is seen, so the chance of any wrong
verdict in a step stays below `alpha` however often it is looked at.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

from modelops_contract import CELLS, FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_POSITIVE

from modelops.canary import stats
from modelops.canary.stats import Interval
from modelops.params import CanaryParams, duration_seconds

Status: TypeAlias = Literal["pass", "fail", "inconclusive", "skipped"]
Decision: TypeAlias = Literal["promote", "hold", "rollback"]
METHOD = (
    "normal-mixture confidence sequence (Robbins 1970; Howard, Ramdas, McAuliffe and Sekhon "
    "2021), valid at every look; alpha split evenly over the tests (Bonferroni)"
)
_SCALES = (1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


@dataclass(frozen=True)
class TrackCounts:
    """What one track did during the step, as the telemetry counted it."""

    requests: float = 0.0
    """Predict requests, every outcome."""
    server_errors: float = 0.0
    latency: tuple[tuple[float, float], ...] = ()
    """Predict latency histogram: (upper bound in seconds, cumulative count), +Inf last."""
    scores: tuple[tuple[float, float], ...] = ()
    """Positive-class score histogram on the server's fixed grid: (upper bound, cumulative)."""
    positive: float = 0.0
    predicted: float = 0.0
    """Rows predicted positive at the threshold, of all rows predicted."""
    features: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Rows per bin (label) per feature."""
    bins: Mapping[str, str] = field(default_factory=dict)
    """Each feature's bin definition (a fingerprint): features are compared bin by bin only
    when both tracks bin them the same way."""
    cells: Mapping[str, float] = field(default_factory=dict)
    """Feedback rows per confusion-matrix cell (true_positive, ...)."""
    agreement: tuple[float, float] = (0.0, 0.0)
    """Feedback rows whose class at the threshold agrees with the answer the client got, and
    rows that do not (for a shadow: against stable's answer)."""
    pairs: tuple[float, float] = (0.0, 0.0)
    """Concordant and discordant pairs of rows, this model's scores against the answer's."""

    def scaled(self, factor: float) -> TrackCounts:
        """The same shares with `factor` times the counts (what more traffic would show)."""
        return replace(
            self,
            requests=self.requests * factor,
            server_errors=self.server_errors * factor,
            latency=tuple((b, c * factor) for b, c in self.latency),
            scores=tuple((b, c * factor) for b, c in self.scores),
            positive=self.positive * factor,
            predicted=self.predicted * factor,
            features={
                name: {label: count * factor for label, count in bins.items()}
                for name, bins in self.features.items()
            },
            cells={cell: count * factor for cell, count in self.cells.items()},
            agreement=(self.agreement[0] * factor, self.agreement[1] * factor),
            pairs=(self.pairs[0] * factor, self.pairs[1] * factor),
        )

    @property
    def labels(self) -> float:
        return sum(self.cells.values())


@dataclass(frozen=True)
class Evidence:
    """Both tracks over the step, and the step itself."""

    canary: TrackCounts
    stable: TrackCounts
    step_seconds: float
    weight: int
    """The canary's share of traffic in this step, percent."""
    queries: Mapping[str, str] = field(default_factory=dict)
    """The PromQL each kind of count came from (shown beside each finding)."""
    shadow: bool = False
    """The new model is a shadow: it scored stable's very requests, so its answers are also
    compared row by row with stable's (from feedback that carries them)."""


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
class Verdict:
    """The decision, why, and the findings it rests on."""

    decision: Decision
    summary: str
    findings: tuple[Finding, ...]
    canary_requests: float
    stable_requests: float
    step_seconds: float
    alpha: float
    more_needed: str | None = None
    method: str = METHOD

    @property
    def exit_code(self) -> int:
        return {"promote": 0, "hold": 3, "rollback": 1}[self.decision]


@dataclass(frozen=True)
class _Test:
    """A criterion before it sees data: its name, what it needs, and how it is computed."""

    criterion: str
    statistic: str
    threshold: str
    query: str
    run: Callable[[TrackCounts, TrackCounts, float, float], Finding]


def judge(
    evidence: Evidence, params: CanaryParams, business: Mapping[str, float] | None = None
) -> Verdict:
    """The verdict for one look at a step (`business`: value per confusion-matrix cell)."""
    tests, skipped = _tests(evidence, params, business)
    alpha = params.alpha / max(len(tests), 1)
    findings = _run(tests, evidence.canary, evidence.stable, alpha, _planned(evidence, params))
    failed = [f for f in findings if f.status == "fail"]
    open_ = [f for f in findings if f.status == "inconclusive" and f.blocking]
    advisory = [f for f in findings if f.status == "inconclusive" and not f.blocking]
    short = _too_early(evidence, params)
    more: str | None = None
    decision: Decision
    if short:
        decision, more = "hold", short
        warning = f" Already beyond a bound: {_names(failed)}." if failed else ""
        summary = f"hold: {short}.{warning}"
    elif failed:
        decision, summary = "rollback", f"roll back: {_because(failed)}"
    elif not open_:
        judged = ", ".join(f.criterion for f in findings if f.status == "pass") or "nothing"
        decision, summary = "promote", f"promote: every criterion is within its bound ({judged})"
        if advisory:
            summary += (
                f"; not decided yet, and not required (quality.required false): {_names(advisory)}"
            )
    else:
        more = _more_needed(tests, evidence, params, alpha)
        decision, summary = "hold", f"hold: not enough data yet for {_names(open_)}; {more}"
    return Verdict(
        decision=decision,
        summary=summary,
        findings=(*findings, *skipped),
        canary_requests=evidence.canary.requests,
        stable_requests=evidence.stable.requests,
        step_seconds=evidence.step_seconds,
        alpha=params.alpha,
        more_needed=more,
    )


def _run(
    tests: Sequence[_Test],
    canary: TrackCounts,
    stable: TrackCounts,
    alpha: float,
    planned: float,
) -> list[Finding]:
    return [test.run(canary, stable, alpha, planned) for test in tests]


def _planned(evidence: Evidence, params: CanaryParams) -> float:
    """The effective sample size the sequences are tightest at: the planned canary requests
    beside the stable requests the same step brings."""
    weight = min(max(evidence.weight, 1), 99)
    planned = float(params.planned_requests)
    return stats.effective_samples(planned, planned * (100 - weight) / weight)


def _too_early(evidence: Evidence, params: CanaryParams) -> str:
    needs = []
    soak = duration_seconds(params.min_soak)
    for track, counts in (("canary", evidence.canary), ("stable", evidence.stable)):
        if counts.requests < params.min_requests:
            needs.append(
                f"{track} has {counts.requests:.0f} of the {params.min_requests} requests a step "
                f"needs ({params.min_requests - counts.requests:.0f} more)"
            )
    if evidence.step_seconds < soak:
        needs.append(
            f"the step has soaked {duration_words(evidence.step_seconds)} of min_soak "
            f"{params.min_soak} ({duration_words(soak - evidence.step_seconds)} more)"
        )
    if evidence.canary.requests == 0 and evidence.step_seconds >= soak:
        needs.append("the canary received no requests at all: check the traffic split")
    return "; ".join(needs)


def _more_needed(
    tests: Sequence[_Test], evidence: Evidence, params: CanaryParams, alpha: float
) -> str:
    planned = _planned(evidence, params)
    for factor in _SCALES:
        canary, stable = evidence.canary.scaled(factor), evidence.stable.scaled(factor)
        findings = _run(tests, canary, stable, alpha, planned)
        if all(f.status != "inconclusive" or not f.blocking for f in findings):
            requests = evidence.canary.requests * (factor - 1)
            when = ""
            if evidence.step_seconds > 0 and evidence.canary.requests > 0:
                more_time = duration_words(evidence.step_seconds * (factor - 1))
                when = f", about {more_time} more at this rate"
            return (
                f"about {factor:g}x the traffic so far would decide (~{requests:.0f} more canary "
                f"requests{when}, if the differences stay as they are)"
            )
    return (
        f"even {_SCALES[-1]}x the traffic so far would not decide: the difference sits at "
        f"the bound; max_step_duration ({params.max_step_duration}) will end the step"
    )


def _tests(
    evidence: Evidence, params: CanaryParams, business: Mapping[str, float] | None
) -> tuple[list[_Test], list[Finding]]:
    """Every test this step runs, and the findings of what is skipped (with the reason)."""
    tests: list[_Test] = []
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
                tests.append(_inputs_test(name, params, q.get("features", "")))
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
    test: _Test,
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


def _errors_test(params: CanaryParams, query: str) -> _Test:
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

    test = _Test(
        "errors",
        "server-error ratio, canary minus stable",
        f"<= {bound:g}",
        query,
        run,
    )
    return test


def _latency_test(level: float, params: CanaryParams, query: str) -> _Test:
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

    test = _Test(
        name, f"p{level * 100:g} latency, canary over stable", f"<= {bound:g}x", query, run
    )
    return test


def _scores_test(params: CanaryParams, query: str) -> _Test:
    bound = params.scores.max_psi

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        first, second = _aligned(_buckets(canary.scores), _buckets(stable.scores))
        interval = stats.population_stability(first, second, alpha=alpha, planned=planned)
        status = _upper_bound_status(interval, bound)
        reason = f"PSI {interval.estimate:.3f} over {len(first)} score buckets"
        samples = (sum(first), sum(second))
        return _finding(test, status, samples, interval, alpha, reason)

    test = _Test("scores", "PSI of the score distribution", f"<= {bound:g}", query, run)
    return test


def _positive_rate_test(params: CanaryParams, query: str) -> _Test:
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

    test = _Test(
        "positive rate",
        "share predicted positive, canary minus stable",
        f"within ±{bound:g}",
        query,
        run,
    )
    return test


def _inputs_test(feature: str, params: CanaryParams, query: str) -> _Test:
    bound = params.inputs.max_psi

    def run(canary: TrackCounts, stable: TrackCounts, alpha: float, planned: float) -> Finding:
        mine, theirs = canary.features.get(feature, {}), stable.features.get(feature, {})
        labels = sorted(set(mine) | set(theirs))
        first = [mine.get(label, 0.0) for label in labels]
        second = [theirs.get(label, 0.0) for label in labels]
        interval = stats.population_stability(first, second, alpha=alpha, planned=planned)
        status = _upper_bound_status(interval, bound)
        reason = (
            f"PSI {interval.estimate:.3f} over {len(labels)} bins; the same traffic split "
            "should see the same inputs (a difference means routing or client trouble)"
        )
        return _finding(test, status, (sum(first), sum(second)), interval, alpha, reason)

    test = _Test(
        f"inputs: {feature}",
        f"PSI of {feature}'s bins, canary against stable",
        f"<= {bound:g}",
        query,
        run,
    )
    return test


def _quality_test(name: str, hit: str, miss: str, params: CanaryParams, query: str) -> _Test:
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

    test = _Test(
        name, f"{name} from feedback, stable minus canary", f"drop <= {bound:g}", query, run
    )
    return test


def _value_test(
    bound: float, values: Mapping[str, float], params: CanaryParams, query: str
) -> _Test:
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

    test = _Test(
        "business value",
        "business value per label, stable minus canary",
        f"drop <= {bound:g}",
        query,
        run,
    )
    return test


def _agreement_test(params: CanaryParams, query: str) -> _Test:
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

    test = _Test(
        "agreement with stable",
        "share of rows classified as stable did",
        f">= {bound:g}",
        query,
        run,
    )
    return test


def _rank_test(params: CanaryParams, query: str) -> _Test:
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

    test = _Test(
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


def _names(findings: Sequence[Finding]) -> str:
    return ", ".join(f.criterion for f in findings)


def _because(findings: Sequence[Finding]) -> str:
    return "; ".join(
        f"{f.criterion} ({f.statistic} {f.estimate:.4g}, interval [{f.low:.4g}, {f.high:.4g}], "
        f"bound {f.threshold}: {f.reason})"
        for f in findings
    )


def duration_words(seconds: float) -> str:
    """Seconds as a person reads them: 45 s, 12 min, 3.5 h, 2.0 d."""
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"

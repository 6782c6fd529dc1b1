"""Confidence sequences: intervals that stay valid however often a canary step is looked at.

A fixed-sample test re-run every few minutes raises its false-alarm rate with every look. A
confidence sequence covers the truth at *every* look at once with probability 1 - alpha, so the
judge may analyse a step as often as it likes. The one here is Robbins' normal mixture (the
mixture SPRT behind most always-valid A/B tests; Howard, Ramdas, McAuliffe and Sekhon 2021): for
an estimate whose standardized error is `u` after `n` effective samples, in `k` dimensions,

    ||u||^2 <= (n + rho) / n * (k * ln((n + rho) / rho) + 2 * ln(1 / alpha))

holds at all n at once. `rho` only decides where the sequence is tightest: it is fixed in
advance from the planned sample size, never from the data. The Gaussian approximation is
asymptotic (the variance is estimated), and the replay harness measures what that costs on
sparse counts (benchmarks/bench_canary.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

SMOOTHING = 0.5
"""Added to every count when estimating a variance (never the estimate itself), so a track
with no errors yet still has an honest, non-zero uncertainty."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and the confidence sequence's bounds around it."""

    estimate: float
    low: float
    high: float


def radius(dimensions: int, samples: float, alpha: float, planned: float) -> float:
    """The bound on the standardized error's norm after `samples` effective samples (inf at 0)."""
    if samples <= 0:
        return math.inf
    rho = _rho(dimensions, alpha, planned)
    spread = (samples + rho) / samples
    return math.sqrt(
        spread * (dimensions * math.log((samples + rho) / rho) + 2 * math.log(1 / alpha))
    )


@lru_cache(maxsize=256)
def _rho(dimensions: int, alpha: float, planned: float) -> float:
    """The mixture precision that makes the bound tightest at `planned` samples."""

    def width(log_rho: float) -> float:
        rho = math.exp(log_rho)
        return (planned + rho) * (
            dimensions * math.log((planned + rho) / rho) + 2 * math.log(1 / alpha)
        )

    low, high = math.log(planned) - 12, math.log(planned) + 4
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        left, right = high - golden * (high - low), low + golden * (high - low)
        if width(left) < width(right):
            high = right
        else:
            low = left
    return math.exp((low + high) / 2)


def effective_samples(first: float, second: float) -> float:
    """Two independent samples as one: the harmonic combination 1 / (1/n1 + 1/n2)."""
    if first <= 0 or second <= 0:
        return 0.0
    return 1.0 / (1.0 / first + 1.0 / second)


def _smoothed_variance(successes: float, trials: float) -> float:
    share = (successes + SMOOTHING) / (trials + 2 * SMOOTHING)
    return share * (1 - share)


def proportion(
    successes: float,
    trials: float,
    *,
    alpha: float,
    planned: float,
    samples: float | None = None,
) -> Interval:
    """One share, e.g. the fraction of requests below a latency bound. `samples`: how many
    independent observations the trials are worth, when fewer than the trials (pairs of rows)."""
    if trials <= 0:
        return Interval(math.nan, 0.0, 1.0)
    worth = trials if samples is None else min(samples, trials)
    if worth <= 0:
        return Interval(successes / trials, 0.0, 1.0)
    estimate = successes / trials
    spread = math.sqrt(_smoothed_variance(successes, trials) / worth)
    half = spread * radius(1, worth, alpha, planned)
    return Interval(estimate, max(0.0, estimate - half), min(1.0, estimate + half))


def proportion_difference(
    first: tuple[float, float],
    second: tuple[float, float],
    *,
    alpha: float,
    planned: float,
) -> Interval:
    """p1 - p2 from (successes, trials) of two independent samples."""
    (x1, n1), (x2, n2) = first, second
    samples = effective_samples(n1, n2)
    if samples <= 0:
        return Interval(math.nan, -1.0, 1.0)
    estimate = x1 / n1 - x2 / n2
    # Per-sample variance, so that the standard error is sqrt(variance / samples).
    variance = samples * (_smoothed_variance(x1, n1) / n1 + _smoothed_variance(x2, n2) / n2)
    half = math.sqrt(variance / samples) * radius(1, samples, alpha, planned)
    return Interval(estimate, max(-1.0, estimate - half), min(1.0, estimate + half))


def mean_difference(
    first: Sequence[tuple[float, float]],
    second: Sequence[tuple[float, float]],
    *,
    alpha: float,
    planned: float,
) -> Interval:
    """Mean of a discrete variable, first minus second, from (value, count) pairs."""
    n1, mean1, var1 = _moments(first)
    n2, mean2, var2 = _moments(second)
    samples = effective_samples(n1, n2)
    if samples <= 0:
        return Interval(math.nan, -math.inf, math.inf)
    estimate = mean1 - mean2
    half = math.sqrt(var1 / n1 + var2 / n2) * radius(1, samples, alpha, planned)
    return Interval(estimate, estimate - half, estimate + half)


def _moments(pairs: Sequence[tuple[float, float]]) -> tuple[float, float, float]:
    total = sum(count for _, count in pairs)
    if total <= 0:
        return 0.0, math.nan, math.nan
    mean = sum(value * count for value, count in pairs) / total
    spread = sum(count * (value - mean) ** 2 for value, count in pairs)
    # Smoothed like a share: two pseudo-observations at the extremes keep a zero-spread
    # sample (every label worth the same so far) from claiming certainty.
    values = [value for value, _ in pairs]
    extremes = (min(values) - mean) ** 2 + (max(values) - mean) ** 2
    variance = (spread + SMOOTHING * extremes) / (total + 2 * SMOOTHING)
    return total, mean, variance


def population_stability(
    first: Sequence[float],
    second: Sequence[float],
    *,
    alpha: float,
    planned: float,
) -> Interval:
    """The chi-square distance between two histograms on the same buckets, with its interval.

    The distance is sum((p1 - p2)^2 / p) over the pooled shares p: PSI to second order, so it is
    judged against the PSI bounds of params.yaml, and the estimate and its interval (its
    confidence sequence, in as many dimensions as buckets less one: fixed by the buckets, not by
    which of them have rows yet, so the sequence stays the same from look to look) are of the
    same statistic. `psi` gives the PSI itself, to show beside it.
    """
    n1, n2 = sum(first), sum(second)
    kept = [(a, b) for a, b in zip(first, second, strict=True) if a + b > 0]
    samples = effective_samples(n1, n2)
    if samples <= 0:
        return Interval(math.nan, 0.0, math.inf)
    if len(kept) < 2:  # every row of both in one bucket: the same distribution so far
        reach = radius(max(len(first) - 1, 1), samples, alpha, planned) / math.sqrt(samples)
        return Interval(0.0, 0.0, reach**2)
    pooled = [(a + b) / (n1 + n2) for a, b in kept]
    distance = math.sqrt(
        sum((a / n1 - b / n2) ** 2 / p for (a, b), p in zip(kept, pooled, strict=True))
    )
    reach = radius(len(first) - 1, samples, alpha, planned) / math.sqrt(samples)
    return Interval(distance**2, max(0.0, distance - reach) ** 2, (distance + reach) ** 2)


def psi(first: Sequence[float], second: Sequence[float]) -> float:
    """The population stability index of two histograms on the same buckets (smoothed shares;
    nan without rows on both sides)."""
    n1, n2 = sum(first), sum(second)
    kept = [(a, b) for a, b in zip(first, second, strict=True) if a + b > 0]
    if n1 <= 0 or n2 <= 0:
        return math.nan
    smoothed1 = [(a + SMOOTHING) / (n1 + SMOOTHING * len(kept)) for a, _ in kept]
    smoothed2 = [(b + SMOOTHING) / (n2 + SMOOTHING * len(kept)) for _, b in kept]
    return sum((p - q) * math.log(p / q) for p, q in zip(smoothed1, smoothed2, strict=True))


def cdf_distance(
    first: Sequence[float],
    second: Sequence[float],
    *,
    alpha: float,
    planned: float,
) -> Interval:
    """The Kolmogorov-Smirnov distance of two histograms on the same ordered bins: the largest
    gap between their CDFs at the bins' edges, the drift gate's statistic for a numeric feature
    read at the profile's cuts.

    Each edge's gap is a difference of two shares with its own sequence at alpha over the
    edges (Bonferroni), so all hold at once; the distance lies between the largest distance
    from 0 of any gap's interval and the largest reach of any.
    """
    n1, n2 = sum(first), sum(second)
    if n1 <= 0 or n2 <= 0:
        return Interval(math.nan, 0.0, 1.0)
    edges = max(len(first) - 1, 1)
    estimate, low, high = 0.0, 0.0, 0.0
    below1 = below2 = 0.0
    for a, b in list(zip(first, second, strict=True))[:-1]:
        below1, below2 = below1 + a, below2 + b
        gap = proportion_difference(
            (below1, n1), (below2, n2), alpha=alpha / edges, planned=planned
        )
        estimate = max(estimate, abs(gap.estimate))
        low = max(low, gap.low, -gap.high)
        high = max(high, abs(gap.low), abs(gap.high))
    return Interval(estimate, low, min(high, 1.0))


def histogram_quantile(bounds: Sequence[float], cumulative: Sequence[float], level: float) -> float:
    """The `level` quantile of a cumulative histogram, interpolated inside its bucket as
    Prometheus's histogram_quantile does (the first bucket starts at 0; inf past the last
    finite bound)."""
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0 or not 0 <= level <= 1:
        return math.nan
    rank = level * total
    below, lower = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank and count > below:
            if math.isinf(bound):
                return math.inf
            return lower + (bound - lower) * (rank - below) / (count - below)
        below, lower = count, bound
    return math.inf


def quantile_ratio(
    first: tuple[Sequence[float], Sequence[float]],
    second: tuple[Sequence[float], Sequence[float]],
    level: float,
    *,
    alpha: float,
    planned: float,
) -> Interval:
    """First's `level` quantile over second's, from cumulative histograms (bounds, counts).

    Each quantile's interval inverts a confidence sequence on the share below it (the share
    of a sample below its true q-quantile is q), at alpha / 2 each.
    """
    ranges = []
    for bounds, cumulative in (first, second):
        total = cumulative[-1] if cumulative else 0.0
        if total <= 0:
            return Interval(math.nan, 0.0, math.inf)
        half = math.sqrt(level * (1 - level) / total) * radius(1, total, alpha / 2, planned)
        low_level, high_level = level - half, level + half
        low = histogram_quantile(bounds, cumulative, max(low_level, 0.0))
        if math.isinf(low):  # beyond the last bucket: above its bound, all that is known
            low = max((b for b in bounds if math.isfinite(b)), default=0.0)
        high = math.inf if high_level >= 1 else histogram_quantile(bounds, cumulative, high_level)
        ranges.append((histogram_quantile(bounds, cumulative, level), low, high))
    (point1, low1, high1), (point2, low2, high2) = ranges
    if math.isinf(point1) and math.isinf(point2):
        estimate = math.nan  # both beyond the last bucket: no ratio to read
    else:
        estimate = point1 / point2 if point2 > 0 else math.inf
    low = low1 / high2 if high2 > 0 and not math.isinf(high2) else 0.0
    high = high1 / low2 if low2 > 0 and not math.isinf(high1) else math.inf
    return Interval(estimate, low, high)

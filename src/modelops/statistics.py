"""How sure a gate can be: intervals and decisions around the numbers Deepchecks computes.

Every decision compares an interval with a limit: `fail` when the whole interval is beyond the
limit, `pass` when it is wholly within, `inconclusive` when it straddles the limit (the data
cannot tell), with the number of rows that would settle it. Pure functions (NumPy, SciPy).

- Rates (nulls, duplicates, overlaps): Wilson score intervals for a binomial proportion.
- Distribution distances: for Kolmogorov-Smirnov, the Dvoretzky-Kiefer-Wolfowitz bound on each
  empirical CDF; for Cramér's V, its critical value under no difference (chi-square).
- Cramér's V from counts (`category_table`, `cramers_v`): the value Deepchecks' FeatureDrift
  gives the pull-request gate on the same two samples, which does not shrink as one sample
  grows, with an interval around the population value that narrows as both grow.
- ROC AUC: the Hanley-McNeil standard error.
- The median of paired measurements (latency ratios): the sign test's order-statistic interval.
- Columns checked one by one share the error rate (Bonferroni).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy import stats

Decision: TypeAlias = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float

    def text(self, *, percent: bool = False) -> str:
        """'0.12 (95% CI 0.08 to 0.17)'-style text, at the interval's own precision."""
        scale, unit = (100.0, "%") if percent else (1.0, "")
        digits = 1 if percent else 3
        return (
            f"{self.estimate * scale:.{digits}f}{unit} "
            f"[{self.low * scale:.{digits}f}{unit}, {self.high * scale:.{digits}f}{unit}]"
        )


def z_value(confidence: float, *, tests: int = 1) -> float:
    """The two-sided normal quantile for `confidence`, shared by `tests` simultaneous tests."""
    alpha = (1.0 - confidence) / max(tests, 1)
    return float(stats.norm.ppf(1.0 - alpha / 2.0))


def wilson(events: int, n: int, *, z: float) -> Interval:
    """Wilson score interval of a proportion (good at 0 and 1, and for small n)."""
    if n <= 0:
        return Interval(0.0, 0.0, 1.0)
    rate = events / n
    denominator = 1.0 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    # The interval always holds the rate; rounding can leave 1e-19 above 0 events' rate of 0.
    return Interval(rate, max(0.0, min(rate, centre - half)), min(1.0, max(rate, centre + half)))


def decide_at_most(interval: Interval, limit: float) -> Decision:
    """A quantity that must not exceed `limit`."""
    if interval.low > limit:
        return "fail"
    if interval.high <= limit:
        return "pass"
    return "inconclusive"


def decide_at_least(interval: Interval, limit: float) -> Decision:
    """A quantity that must reach `limit`."""
    if interval.high < limit:
        return "fail"
    if interval.low >= limit:
        return "pass"
    return "inconclusive"


def decide_severe_at_most(interval: Interval, limit: float, *, none: float = 0.0) -> Decision:
    """A severe defect (a leak): fails once its estimate is beyond `limit` and the interval
    shows the effect is real (its low end is above `none`, the value of no effect), at any
    sample size.

    Waiting for a whole interval beyond the limit would pass a leak on a small table (PPS 0.958
    [0.860, 0.989] against 0.9 on 455 rows). The interval still guards clean data: on 24 rows
    a random id order can read |2 AUC - 1| 0.3 by chance, but its interval reaches 0.
    """
    if interval.estimate > limit and interval.low > none:
        return "fail"
    return decide_at_most(interval, limit)


def leans_beyond_limit(interval: Interval, limit: float, *, at_most: bool) -> bool:
    """Whether an undecided interval's estimate is already beyond `limit`: more rows would most
    likely fail it, so a reviewer must look at it rather than read it as passed."""
    if at_most:
        return decide_at_most(interval, limit) == "inconclusive" and interval.estimate > limit
    return decide_at_least(interval, limit) == "inconclusive" and interval.estimate < limit


def rows_to_show_rate_below(rate: float, limit: float, *, z: float) -> int | None:
    """Rows needed for a Wilson upper bound under `limit` when the true rate is `rate`.

    None when no number of rows can show it (the rate is at or above the limit).
    """
    if rate >= limit:
        return None

    def shown(n: int) -> bool:
        return wilson(round(rate * n), n, z=z).high <= limit

    high = 1
    while not shown(high):
        high *= 2
        if high > 10**10:
            return None
    low = high // 2
    while low + 1 < high:
        middle = (low + high) // 2
        low, high = (low, middle) if shown(middle) else (middle, high)
    return high


def ks_interval(statistic: float, n: int, m: int, *, confidence: float, tests: int = 1) -> Interval:
    """The population KS distance given the observed one, from the DKW bound on both CDFs."""
    alpha = (1.0 - confidence) / max(tests, 1)
    margin = _dkw(n, alpha / 2) + _dkw(m, alpha / 2)
    return Interval(statistic, max(0.0, statistic - margin), min(1.0, statistic + margin))


def ks_rows_needed(
    limit: float, *, share: float, confidence: float, tests: int = 1, observed: float = 0.0
) -> int | None:
    """Total rows (split `share` / 1 - `share`) for the KS interval around `observed` to end
    under `limit`; None when `observed` is not under it."""
    if observed >= limit:
        return None
    alpha = (1.0 - confidence) / max(tests, 1)
    # margin = c/sqrt(share N) + c/sqrt((1-share) N) <= limit - observed, c = sqrt(ln(4/alpha)/2)
    c = math.sqrt(math.log(4.0 / alpha) / 2.0)
    spread = 1.0 / math.sqrt(share) + 1.0 / math.sqrt(1.0 - share)
    return math.ceil((c * spread / (limit - observed)) ** 2)


def cramers_v_interval(
    value: float, total: int, categories: int, *, confidence: float, tests: int = 1
) -> Interval:
    """Cramér's V between two samples, within the critical value of no difference either way."""
    alpha = (1.0 - confidence) / max(tests, 1)
    margin = cramers_v_critical(total, categories, alpha=alpha)
    return Interval(value, max(0.0, value - margin), min(1.0, value + margin))


def cramers_v_critical(total: int, categories: int, *, alpha: float) -> float:
    """Cramér's V that two samples of one distribution exceed with probability `alpha`."""
    if total <= 0:
        return 1.0
    quantile = float(stats.chi2.ppf(1.0 - alpha, df=max(categories - 1, 1)))
    return min(1.0, math.sqrt(quantile / total))


def cramers_v_rows_needed(
    limit: float, categories: int, *, confidence: float, tests: int = 1, observed: float = 0.0
) -> int | None:
    """Total rows for the Cramér's V interval around `observed` to end under `limit`."""
    if observed >= limit:
        return None
    alpha = (1.0 - confidence) / max(tests, 1)
    quantile = float(stats.chi2.ppf(1.0 - alpha, df=max(categories - 1, 1)))
    return math.ceil(quantile / (limit - observed) ** 2)


# Cramér's V from counts, as the pull-request gate reads it ------------------------------------

OTHER_SHARE = 0.01
"""A category with less than this share of the first (reference) sample's rows is pooled with
the other rare ones, in both samples: Deepchecks FeatureDrift's `min_category_size_ratio`, at
the default the gate keeps (`gates/catalog.py`)."""
RARE = "other rare categories"
"""The label of the pooled column."""
MIN_EXPECTED_ROWS = 5.0
"""Rows every column must expect in the smaller sample before the interval's chi-square
approximation is trusted (the textbook rule): fewer is inconclusive, whatever the value."""


@dataclass(frozen=True)
class CategoryTable:
    """Rows per category of two samples (`first` the reference), rare categories pooled."""

    labels: tuple[str, ...]
    first: tuple[float, ...]
    second: tuple[float, ...]


def category_table(
    first: Mapping[str, float],
    second: Mapping[str, float],
    *,
    pooled: Collection[str] = (),
    min_share: float = OTHER_SHARE,
) -> CategoryTable:
    """Two samples' rows per category, the rare ones pooled as Deepchecks pools them.

    A category with less than `min_share` of `first`'s rows (so also one `first` never saw)
    joins the pooled column in both samples, as does every label in `pooled` (a group of
    categories each rare in `first`, such as the profile's `other`). The pooled column is kept
    only when it holds more than `min_share` of either sample. Missing values are the caller's
    to leave out: the gate ignores them.
    """
    size1, size2 = sum(first.values()), sum(second.values())
    kept: list[tuple[str, float, float]] = []
    rare1 = rare2 = 0.0
    for label in dict.fromkeys([*first, *second]):
        a, b = first.get(label, 0.0), second.get(label, 0.0)
        if label in pooled or a < size1 * min_share:
            rare1, rare2 = rare1 + a, rare2 + b
        else:
            kept.append((label, a, b))
    if rare1 > size1 * min_share or rare2 > size2 * min_share:
        kept.append((RARE, rare1, rare2))
    return CategoryTable(
        labels=tuple(label for label, _, _ in kept),
        first=tuple(a for _, a, _ in kept),
        second=tuple(b for _, _, b in kept),
    )


@dataclass(frozen=True)
class CramersV:
    """Cramér's V of two samples of a categorical variable, and what its interval rests on."""

    value: float
    """The gate's number: Deepchecks' bias-corrected V with both samples scaled to one size.
    It tends to `distance` as the samples grow, and does not shrink as one of them grows."""
    distance: float
    """The plug-in value sqrt(sum((p - q)^2 / (p + q)) / 2) of the two samples' shares p and q:
    the centre of the interval, what V is for two samples of the same size."""
    worth: float
    """Rows per sample the comparison is worth: 1 / max over columns of (p/n1 + q/n2) / (p + q).
    The harmonic mean of n1 and n2 when the shares agree; never below the smaller of them."""
    columns: int
    sparsest: str
    """The column expecting the fewest rows in the smaller sample."""
    expected: float
    """How many rows it expects there (at the two samples' mean share)."""

    @property
    def decidable(self) -> bool:
        """Whether every column expects `MIN_EXPECTED_ROWS` in the smaller sample."""
        return self.expected >= MIN_EXPECTED_ROWS

    def interval(self, reach: float) -> Interval:
        """The value, with an interval for the population value at `reach`: a bound on the
        standardized error's norm in `columns - 1` dimensions (the square root of a chi-square
        quantile for one look, a confidence sequence's radius for many).

        V is half the norm of the share difference p - q weighted by 2 / (p + q); each
        column's error has a variance of at most p/n1 + q/n2, at most 2 / worth in that norm,
        so the plug-in value is within reach / sqrt(2 worth) of the population value (triangle
        inequality). The interval spans the gate's value too, which bias correction puts a
        little below the plug-in.
        """
        if self.worth <= 0 or math.isinf(reach):
            return Interval(self.value, 0.0, 1.0)
        margin = reach / math.sqrt(2.0 * self.worth)
        return Interval(
            self.value,
            max(0.0, min(self.value, self.distance) - margin),
            min(1.0, max(self.value, self.distance) + margin),
        )


def cramers_v(table: CategoryTable) -> CramersV:
    """Cramér's V of `table` as the pull-request gate computes it, with its interval's inputs."""
    columns = [
        (label, a, b)
        for label, a, b in zip(table.labels, table.first, table.second, strict=True)
        if a + b > 0
    ]
    n1, n2 = sum(a for _, a, _ in columns), sum(b for _, _, b in columns)
    if n1 <= 0 or n2 <= 0:
        return CramersV(0.0, 0.0, 0.0, len(columns), "", 0.0)
    shares = [(label, a / n1, b / n2) for label, a, b in columns]
    distance = math.sqrt(sum((p - q) ** 2 / (p + q) for _, p, q in shares) / 2.0)
    worth = 1.0 / max((p / n1 + q / n2) / (p + q) for _, p, q in shares)
    expected, sparsest = min((min(n1, n2) * (p + q) / 2.0, label) for label, p, q in shares)
    value = gate_cramers_v(table.first, table.second)
    return CramersV(value, distance, worth, len(columns), sparsest, expected)


def gate_cramers_v(first: Sequence[float], second: Sequence[float]) -> float:
    """Deepchecks' Cramér's V of two rows of counts on the same (already pooled) columns.

    Step by step as Deepchecks 0.19.1 takes them (`utils/distribution/drift.py`): the larger
    sample is scaled down to the smaller one's rows and both are rounded to whole rows; empty
    columns are dropped; Pearson's chi-square of the 2 x k table, with Yates' continuity
    correction when k is 2 (SciPy's `chi2_contingency` default); then Bergsma's bias
    correction. 0 where Deepchecks has no number (one column, or a sample with no rows).
    """
    if len(first) < 2:
        return 0.0
    size1, size2 = sum(first), sum(second)
    if size1 > size2:
        first = [a * (size2 / size1) for a in first]
    elif size2 > size1:
        second = [b * (size1 / size2) for b in second]
    cells = [(round(a), round(b)) for a, b in zip(first, second, strict=True)]
    cells = [(a, b) for a, b in cells if a or b]
    k = len(cells)
    rows = (sum(a for a, _ in cells), sum(b for _, b in cells))
    total = rows[0] + rows[1]
    if k < 2 or min(rows) <= 0 or total <= 2:
        return 0.0
    chi2 = 0.0
    for a, b in cells:
        for observed, row in ((a, rows[0]), (b, rows[1])):
            expected = row * (a + b) / total
            gap = abs(observed - expected)
            if k == 2:
                gap = max(gap - 0.5, 0.0)
            chi2 += gap * gap / expected
    shrink = 1.0 / (total - 1)
    corrected = max(0.0, chi2 / total - (k - 1) * shrink)
    spread = min(1.0 - shrink, (k - 1) - (k - 1) ** 2 * shrink)
    return math.sqrt(corrected / spread) if spread > 0 else 0.0


def chi_square_reach(dimensions: int, *, confidence: float, tests: int = 1) -> float:
    """The norm a standardized error in `dimensions` dimensions stays under at `confidence`
    (shared by `tests` simultaneous tests): the square root of a chi-square quantile."""
    alpha = (1.0 - confidence) / max(tests, 1)
    return math.sqrt(float(stats.chi2.ppf(1.0 - alpha, df=max(dimensions, 1))))


def auc_interval(auc: float, positives: int, negatives: int, *, z: float) -> Interval:
    """ROC AUC with the Hanley-McNeil standard error."""
    if positives == 0 or negatives == 0:
        return Interval(auc, 0.0, 1.0)
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    # A floor: at AUC 0 or 1 the formula gives no spread, which no finite sample supports.
    floor = 1.0 / (4.0 * min(positives, negatives) + 4.0)
    half = z * math.sqrt(max(variance, floor * floor))
    return Interval(auc, max(0.0, auc - half), min(1.0, auc + half))


def difference(first: Interval, second: Interval) -> Interval:
    """first - second, with Newcombe's method of combining the two intervals."""
    estimate = first.estimate - second.estimate
    below = math.hypot(first.estimate - first.low, second.high - second.estimate)
    above = math.hypot(first.high - first.estimate, second.estimate - second.low)
    return Interval(estimate, estimate - below, estimate + above)


def median_interval(values: Sequence[float], *, confidence: float) -> Interval | None:
    """The median of independent values, with the sign test's distribution-free interval.

    The interval runs from the k-th smallest to the k-th largest value, k the largest rank
    whose binomial tail P(B <= k - 1), B ~ Binomial(n, 1/2), is at most (1 - confidence) / 2:
    it holds the population median with at least `confidence` whatever the distribution, and
    up to k - 1 outliers on either side (a noisy neighbour's burst) move neither end. None when
    `values` are too few for any such interval (`median_interval_size`).
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = len(ordered)
    ranks = np.arange(1, n // 2 + 1)
    allowed = ranks[stats.binom.cdf(ranks - 1, n, 0.5) <= (1.0 - confidence) / 2.0]
    if allowed.size == 0:
        return None
    k = int(allowed.max())
    return Interval(float(np.median(ordered)), float(ordered[k - 1]), float(ordered[n - k]))


def median_interval_size(confidence: float) -> int:
    """The fewest values for which `median_interval` gives an interval (6 at 95%)."""
    return math.ceil(math.log2(2.0 / (1.0 - confidence)) - 1e-12)


def _dkw(n: int, alpha: float) -> float:
    """DKW: sup |F_n - F| exceeds this with probability at most `alpha`."""
    if n <= 0:
        return 1.0
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def youden_j(scores: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_]) -> float:
    """How well one score separates the classes at its best cut-off: max |TPR - FPR|, the
    Kolmogorov-Smirnov distance between the positives' and the negatives' scores (Youden's J).

    It does not depend on the class balance: a column equal to the label with a share e of
    rows flipped reads 1 - 2e with 50 % or with 3 % positives (a predictive power score reads
    about 0 on the latter). Missing scores form one block, tried at either end.
    """
    positives = int(positive.sum())
    negatives = len(positive) - positives
    if positives == 0 or negatives == 0:
        return 0.0
    missing = np.isnan(scores)
    order = np.argsort(scores[~missing], kind="stable")
    ranked, hits = scores[~missing][order], positive[~missing][order]
    boundary = np.append(ranked[1:] != ranked[:-1], True) if len(ranked) else np.array([], bool)
    seen_pos, seen_neg = np.cumsum(hits)[boundary], np.cumsum(~hits)[boundary]
    missing_pos = int(positive[missing].sum())
    missing_neg = int(missing.sum()) - missing_pos
    best = abs(missing_pos / positives - missing_neg / negatives)
    for before_pos, before_neg in ((0, 0), (missing_pos, missing_neg)):
        gaps = np.abs((before_pos + seen_pos) / positives - (before_neg + seen_neg) / negatives)
        best = max(best, float(gaps.max()) if len(gaps) else 0.0)
    return best

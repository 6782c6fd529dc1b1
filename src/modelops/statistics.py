"""How sure a gate can be: intervals and decisions around the numbers Deepchecks computes.

Every decision compares an interval with a limit: `fail` when the whole interval is beyond the
limit, `pass` when it is wholly within, `inconclusive` when it straddles the limit (the data
cannot tell), with the number of rows that would settle it. Pure functions (NumPy, SciPy).

- Rates (nulls, duplicates, overlaps): Wilson score intervals for a binomial proportion.
- Distribution distances: for Kolmogorov-Smirnov, the Dvoretzky-Kiefer-Wolfowitz bound on each
  empirical CDF; for Cramér's V, its critical value under no difference (chi-square).
- ROC AUC: the Hanley-McNeil standard error.
- Columns checked one by one share the error rate (Bonferroni).
"""

from __future__ import annotations

import math
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
    return Interval(rate, max(0.0, centre - half), min(1.0, centre + half))


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

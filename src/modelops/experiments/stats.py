"""The numbers of an A/B(/n) experiment: is the split as planned, what each variant's KPI is,
how sure the difference is, how many units it takes. Pure functions, looked at as often as
anyone likes: every test here is valid at every look at once, not only at a fixed horizon.

- Sample-ratio mismatch: a Dirichlet-multinomial mixture Bayes factor against the planned
  multinomial. Under the plan it is a test martingale, so by Ville's inequality it ever reaches
  1/alpha with probability at most alpha, however often it is read.
- Differences of a KPI: the canary's confidence sequence (`canary.stats.radius`, Robbins'
  normal mixture), reused as `canary.stats.mean_difference` uses it, on `Moments` that may be
  CUPED-adjusted with a pre-period covariate.
- Plans: the units at which the always-valid interval detects the minimum effect with the
  wanted power, beside the fixed-horizon z-test's (what always-valid inference costs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal, TypeAlias

from modelops.canary.stats import SMOOTHING, Interval, effective_samples, radius

Outcome: TypeAlias = Literal["pass", "breached", "inconclusive"]

CONCENTRATION = 1000.0
"""The SRM prior's weight, in units: a Dirichlet centred on the planned shares, as sure of them
as `CONCENTRATION` units would make it. Shares off by about sqrt(p(1-p)/CONCENTRATION) (1.6
points at 50/50) are what it expects of a broken split; smaller ones it still finds, with more
units. The evidence hardly depends on it past a few thousand units (benchmarks/results/
experiments.md measures the detection)."""


@dataclass(frozen=True)
class SampleRatio:
    """Whether units reached the variants in the planned shares (all mappings by variant)."""

    counts: Mapping[str, float]
    """As counted (before dividing by the duplication)."""
    planned: Mapping[str, float]
    """The planned shares, summing to 1."""
    observed: Mapping[str, float]
    """The observed shares (nan without units)."""
    units: float
    """The units tested: the counts' total divided by the duplication."""
    log_bayes_factor: float
    p_value: float
    """min(1, 1/BF): valid at any look, as is its running minimum over looks."""
    alpha: float
    mismatch: bool
    short: str | None
    """The variant furthest below its planned share (relative to it); None without units or
    with one variant."""
    over: str | None
    """The variant furthest above its planned share."""


def sample_ratio(
    counts: Mapping[str, float],
    planned: Mapping[str, float],
    *,
    alpha: float,
    duplication: float = 1.0,
    concentration: float = CONCENTRATION,
) -> SampleRatio:
    """Test the split of `counts` (units per variant) against the `planned` shares (percent or
    fractions, normalised; a variant missing from one side has 0 there).

    `duplication` >= 1 bounds how many times one unit may have been counted: each server
    process counts a unit once, and several processes may each count it. With each unit counted
    m_i <= d times, Var(N_v) = p(1-p) * sum(m_i^2) <= p(1-p) * d * N for N counted units, so N_v
    / d varies no more than a multinomial count of N / d units: testing the counts divided by d
    keeps the false-alarm rate under alpha (in the normal approximation) and costs up to a
    factor d in the units a real mismatch needs.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
    if not duplication >= 1:
        raise ValueError(f"duplication is at least 1 (each unit counted once), not {duplication}")
    if not concentration > 0:
        raise ValueError(f"the prior's concentration must be positive, not {concentration}")
    shares = _normalised(planned, "planned shares")
    names = list(dict.fromkeys([*shares, *counts]))
    counted = {name: float(counts.get(name, 0.0)) for name in names}
    if any(c < 0 or math.isnan(c) for c in counted.values()):
        raise ValueError(f"counts must be non-negative: {dict(counts)}")
    share = {name: shares.get(name, 0.0) for name in names}
    total = sum(counted.values())
    observed = {name: c / total if total > 0 else math.nan for name, c in counted.items()}
    units = total / duplication
    log_bf = _log_bayes_factor(
        [counted[name] / duplication for name in names],
        [share[name] for name in names],
        concentration,
    )
    p_value = min(1.0, math.exp(-log_bf)) if log_bf < math.inf else 0.0
    short = over = None
    if total > 0 and len(names) > 1:

        def off(name: str) -> float:  # relative to the plan; a variant planned none is over
            if share[name] > 0:
                return observed[name] / share[name] - 1
            return math.inf if counted[name] > 0 else 0.0

        short, over = min(names, key=off), max(names, key=off)
    return SampleRatio(
        counts=counted,
        planned=share,
        observed=observed,
        units=units,
        log_bayes_factor=log_bf,
        p_value=p_value,
        alpha=alpha,
        mismatch=log_bf >= math.log(1 / alpha),
        short=short,
        over=over,
    )


def _log_bayes_factor(counts: Sequence[float], shares: Sequence[float], weight: float) -> float:
    """log of the Dirichlet(weight * shares) mixture's likelihood over the planned multinomial's,
    for the sequence of assignments (the multinomial coefficient is common to both)."""
    if any(n > 0 and p <= 0 for n, p in zip(counts, shares, strict=True)):
        return math.inf  # units where the plan sends none: impossible under the plan
    kept = [(n, p) for n, p in zip(counts, shares, strict=True) if p > 0]
    total = sum(n for n, _ in kept)
    mixture = math.lgamma(weight) - math.lgamma(weight + total)
    mixture += sum(math.lgamma(weight * p + n) - math.lgamma(weight * p) for n, p in kept)
    plan = sum(n * math.log(p) for n, p in kept if n > 0)
    return mixture - plan


def _normalised(shares: Mapping[str, float], what: str) -> dict[str, float]:
    if any(s < 0 or math.isnan(s) for s in shares.values()):
        raise ValueError(f"{what} must be non-negative: {dict(shares)}")
    total = sum(shares.values())
    if total <= 0:
        raise ValueError(f"{what} must have a positive total: {dict(shares)}")
    return {name: s / total for name, s in shares.items()}


@dataclass(frozen=True)
class Cell:
    """The rows of one cell of a discrete KPI (e.g. one confusion cell, worth `value` each),
    with the sums of a pre-period covariate x over those of them that have one."""

    value: float
    rows: float
    rows_with_x: float = 0.0
    sum_x: float = 0.0
    sum_x2: float = 0.0


@dataclass(frozen=True)
class Moments:
    """A KPI's rows in one variant: how many, their mean and variance, and (for CUPED) the
    covariate's mean and variance and its covariance with the KPI over the same rows (nan
    without a covariate). Variances are per row, so a mean's variance is variance / n."""

    n: float
    mean: float
    variance: float
    mean_x: float = math.nan
    var_x: float = math.nan
    cov_xy: float = math.nan

    @property
    def has_covariate(self) -> bool:
        return not math.isnan(self.var_x)

    @classmethod
    def of_values(cls, pairs: Sequence[tuple[float, float]]) -> Moments:
        """From (value, count) pairs, e.g. each labelled prediction worth its confusion cell's
        business value. Smoothed as the canary smooths them (canary.stats.mean_difference):
        two half pseudo-rows at the extreme values keep a sample that has shown no spread yet
        from claiming certainty, so pass every cell, those with no rows yet included."""
        return cls.of_cells([Cell(value, count) for value, count in pairs])

    @classmethod
    def of_share(cls, successes: float, trials: float) -> Moments:
        """A share, successes / trials: recall = TP / (TP + FN), precision = TP / (TP + FP),
        the positive rate, the error ratio. The variance is smoothed as the canary's shares."""
        if trials <= 0:
            return cls(0.0, math.nan, math.nan)
        smoothed = (successes + SMOOTHING) / (trials + 2 * SMOOTHING)
        return cls(float(trials), successes / trials, smoothed * (1 - smoothed))

    @classmethod
    def of_cells(cls, cells: Sequence[Cell]) -> Moments:
        """From per-cell rows and covariate sums. The KPI is constant within a cell, so
        sum(x * y) is the sum over cells of value * sum_x. Rows without a covariate count at
        the covariate's mean (they add nothing to its variance or covariance): the usual way to
        keep units without a pre-period in a CUPED analysis. No covariate on any row: nan."""
        kept = [cell for cell in cells if cell.rows > 0]
        total = sum(cell.rows for cell in kept)
        if total <= 0:
            return cls(0.0, math.nan, math.nan)
        mean = sum(cell.value * cell.rows for cell in kept) / total
        spread = sum(cell.rows * (cell.value - mean) ** 2 for cell in kept)
        values = [cell.value for cell in cells]  # empty cells too: the values a row may take
        extremes = (min(values) - mean) ** 2 + (max(values) - mean) ** 2
        variance = (spread + SMOOTHING * extremes) / (total + 2 * SMOOTHING)
        with_x = sum(cell.rows_with_x for cell in kept)
        if with_x <= 0:
            return cls(total, mean, variance)
        mean_x = sum(cell.sum_x for cell in kept) / with_x
        var_x = max(sum(cell.sum_x2 for cell in kept) - with_x * mean_x**2, 0.0) / total
        cov = sum((c.value - mean) * (c.sum_x - c.rows_with_x * mean_x) for c in kept) / total
        return cls(total, mean, variance, mean_x, var_x, cov)


@dataclass(frozen=True)
class Cuped:
    """Variants' moments after CUPED (or as they were, when it could not apply, and why)."""

    samples: Mapping[str, Moments]
    applied: bool
    reason: str
    theta: float = 0.0
    """cov(x, y) / var(x) on the pooled rows."""
    reduction: float = 0.0
    """1 - the adjusted over the unadjusted variance of the variants' means, summed: the
    share of the comparisons' variance removed (about rho^2)."""


def cuped(samples: Mapping[str, Moments]) -> Cuped:
    """Adjust each variant's KPI by a pre-period covariate x that no variant can have changed:
    y - theta * (x - pooled mean of x), theta = cov(x, y) / var(x) on the pooled rows. The means
    stay unbiased (x's mean is the same in every variant by randomisation) and each variance
    falls to var(y - theta * x), about var(y) * (1 - rho^2): the same decision with fewer
    units."""
    missing = [name for name, m in samples.items() if m.n > 0 and not m.has_covariate]
    rows = sum(m.n for m in samples.values())
    if rows <= 0:
        return Cuped(dict(samples), False, "no rows yet")
    if missing:
        return Cuped(dict(samples), False, f"no covariate for {', '.join(sorted(missing))}")
    kept = {name: m for name, m in samples.items() if m.n > 0}
    mean_x = sum(m.n * m.mean_x for m in kept.values()) / rows
    mean_y = sum(m.n * m.mean for m in kept.values()) / rows
    var_x = sum(m.n * (m.var_x + (m.mean_x - mean_x) ** 2) for m in kept.values()) / rows
    if var_x <= 0:
        return Cuped(dict(samples), False, "the covariate does not vary")
    cov = sum(m.n * (m.cov_xy + (m.mean_x - mean_x) * (m.mean - mean_y)) for m in kept.values())
    theta = cov / rows / var_x
    adjusted = dict(samples)
    for name, m in kept.items():
        variance = max(m.variance - 2 * theta * m.cov_xy + theta**2 * m.var_x, 0.0)
        adjusted[name] = Moments(m.n, m.mean - theta * (m.mean_x - mean_x), variance)
    before = sum(m.variance / m.n for m in kept.values())
    after = sum(adjusted[name].variance / m.n for name, m in kept.items())
    reduction = 1 - after / before if before > 0 else 0.0
    return Cuped(adjusted, True, f"theta {theta:.4g}", theta, reduction)


def difference(candidate: Moments, control: Moments, *, alpha: float, planned: float) -> Interval:
    """Candidate minus control, an always-valid interval: the canary's confidence sequence on
    the effective (harmonic) samples, exactly as canary.stats.mean_difference. `planned`: the
    effective samples the sequence is tightest at (`Plan.planned`); `alpha` already split
    over the comparisons (`split_alpha`)."""
    samples = effective_samples(candidate.n, control.n)
    if samples <= 0:
        return Interval(math.nan, -math.inf, math.inf)
    estimate = candidate.mean - control.mean
    spread = math.sqrt(candidate.variance / candidate.n + control.variance / control.n)
    half = spread * radius(1, samples, alpha, planned)
    return Interval(estimate, estimate - half, estimate + half)


def split_alpha(alpha: float, candidates: int) -> float:
    """Bonferroni: the alpha of each comparison when `candidates` candidates are each compared
    with the control and, should several beat it, with each other: k + k(k-1)/2 comparisons
    share alpha, so a wrong winner stays under alpha whatever happens."""
    k = max(candidates, 1)
    return alpha / (k + k * (k - 1) // 2)


def non_inferiority(interval: Interval, margin: float, *, higher_is_better: bool) -> Outcome:
    """A guardrail: the candidate may be worse than the control by at most `margin`, an
    absolute difference in the metric's own unit (0.02 on a share is 2 points; 5.0 on a
    business value is 5 per row). `pass` when the whole interval is on the good side of the
    margin, `breached` when it is wholly past it, `inconclusive` while it straddles it."""
    if margin < 0:
        raise ValueError(f"a margin is a non-negative distance, not {margin}")
    if math.isnan(interval.estimate):
        return "inconclusive"
    if higher_is_better:
        if interval.low > -margin:
            return "pass"
        return "breached" if interval.high < -margin else "inconclusive"
    if interval.high < margin:
        return "pass"
    return "breached" if interval.low > margin else "inconclusive"


@dataclass(frozen=True)
class Plan:
    """How many units an experiment needs (units: rows of the KPI, e.g. labelled predictions
    for a business value, actual positives for recall)."""

    units: Mapping[str, float]
    """Per variant, at the planned shares."""
    units_total: float
    planned: Mapping[str, float]
    """Per candidate: the effective samples to pass to `difference` as `planned`."""
    alpha: float
    """Of each comparison, after the split."""
    fixed_horizon: Mapping[str, float] = field(default_factory=dict)
    """Per variant, for one z-test at one look at the same alpha and power."""
    fixed_horizon_total: float = 0.0

    @property
    def price(self) -> float:
        """How many times the fixed-horizon units always-valid inference needs."""
        return self.units_total / self.fixed_horizon_total


def plan(
    minimum_effect: float,
    standard_deviation: float,
    *,
    alpha: float,
    power: float,
    shares: Mapping[str, float],
    candidates: int,
    control: str = "stable",
) -> Plan:
    """The units at which, for every candidate, the always-valid interval's half-width plus
    z_power standard errors is at most `minimum_effect`: a true effect of that size is then
    significant at that look with probability `power` (and may be earlier), with the sequence
    tuned to be tightest there. `shares`: every variant's (the control's included), percent or
    fractions; `candidates`: how many share alpha (`split_alpha`). The fixed-horizon z-test's
    units are beside it, for the price of looking every day."""
    if minimum_effect <= 0 or standard_deviation <= 0:
        raise ValueError(
            f"the minimum effect ({minimum_effect}) and standard deviation "
            f"({standard_deviation}) must be positive: with no spread there is nothing to plan"
        )
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError(f"alpha ({alpha}) and power ({power}) must be in (0, 1)")
    share = _normalised(shares, "shares")
    others = [name for name in share if name != control]
    if share.get(control, 0.0) <= 0 or not others or any(share[n] <= 0 for n in others):
        raise ValueError(f"the control {control!r} and every candidate need a share: {share}")
    each = split_alpha(alpha, candidates)
    z_power = NormalDist().inv_cdf(power)
    z_fixed = NormalDist().inv_cdf(1 - each / 2)
    # Units in all for a standard error of the candidate's difference of 1 / sqrt(units).
    scale = max(1 / share[n] + 1 / share[control] for n in others)
    needed = (standard_deviation / minimum_effect) ** 2 * scale
    fixed = (z_fixed + z_power) ** 2 * needed
    total, previous = fixed, 0.0
    for _ in range(100):  # the radius depends on the planned samples, which depend on units
        if abs(total - previous) <= 1e-9 * total:
            break
        samples = total / scale  # the binding comparison's effective samples
        previous, total = total, (radius(1, samples, each, samples) + z_power) ** 2 * needed
    total = math.ceil(total)
    return Plan(
        units={name: total * s for name, s in share.items()},
        units_total=float(total),
        planned={n: effective_samples(total * share[n], total * share[control]) for n in others},
        alpha=each,
        fixed_horizon={name: math.ceil(fixed) * s for name, s in share.items()},
        fixed_horizon_total=float(math.ceil(fixed)),
    )


def value_deviation(values: Mapping[str, float], shares: Mapping[str, float]) -> float:
    """The standard deviation of a business value per labelled prediction, from each cell's
    value and its share of labelled predictions in a reference (e.g. the model's test-set
    confusion shares; normalised, cells without a share count 0)."""
    share = _normalised({cell: shares.get(cell, 0.0) for cell in values}, "cell shares")
    mean = sum(values[cell] * s for cell, s in share.items())
    return math.sqrt(sum(s * (values[cell] - mean) ** 2 for cell, s in share.items()))


def share_deviation(share: float) -> float:
    """The standard deviation of one row of a share p: sqrt(p (1 - p))."""
    if not 0 <= share <= 1:
        raise ValueError(f"a share is in [0, 1], not {share}")
    return math.sqrt(share * (1 - share))


def days_needed(units_total: float, units_per_day: float) -> float:
    """Days to reach `units_total` at `units_per_day`: 0 when nothing is needed, inf with no
    traffic (the caller says "no traffic" rather than a date)."""
    if units_total <= 0:
        return 0.0
    if not units_per_day > 0:
        return math.inf
    return units_total / units_per_day

"""The statistics of an A/B experiment: the split, the KPI's moments, CUPED, always-valid
differences, guardrails and plans (pure and fast: no server, no files)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelops.canary import stats as canary
from modelops.experiments.stats import (
    Cell,
    Moments,
    cuped,
    days_needed,
    difference,
    non_inferiority,
    plan,
    sample_ratio,
    share_deviation,
    split_alpha,
    value_deviation,
)
from modelops.statistics import wilson

VALUES = {"tp": 120.0, "fn": 0.0, "fp": -15.0, "tn": 0.0}
SHARES = {"tp": 0.14, "fn": 0.06, "fp": 0.08, "tn": 0.72}


# Sample-ratio mismatch


def test_no_units_is_no_evidence() -> None:
    srm = sample_ratio({"stable": 0, "candidate": 0}, {"stable": 50, "candidate": 50}, alpha=0.01)
    assert srm.log_bayes_factor == 0.0
    assert srm.p_value == 1.0
    assert not srm.mismatch
    assert srm.short is None
    assert srm.over is None
    assert math.isnan(srm.observed["stable"])


@pytest.mark.parametrize("total", [10, 1_000, 100_000, 10_000_000, 1_000_000_000])
@pytest.mark.parametrize(
    "shares",
    [{"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1}, {"a": 0.5, "b": 0.25, "c": 0.25}],
)
def test_counts_exactly_as_planned_never_mismatch(total: int, shares: dict[str, float]) -> None:
    counts = {name: total * share for name, share in shares.items()}
    srm = sample_ratio(counts, shares, alpha=0.05)
    assert not srm.mismatch
    assert math.isfinite(srm.log_bayes_factor)
    if total >= 100_000:  # the mixture pays for its spread: evidence *for* the plan
        assert srm.log_bayes_factor < 0


def test_a_ten_percent_imbalance_on_100k_units_is_a_mismatch() -> None:
    srm = sample_ratio(
        {"stable": 47_600, "candidate": 52_400}, {"stable": 1, "candidate": 1}, alpha=0.001
    )
    assert srm.mismatch
    assert srm.p_value < 1e-20
    assert (srm.short, srm.over) == ("stable", "candidate")
    assert srm.observed["candidate"] == pytest.approx(0.524)
    assert srm.units == 100_000


def test_a_half_percent_imbalance_needs_a_few_hundred_thousand_units() -> None:
    def mismatch(units: int) -> bool:
        counts = {"a": units * 0.505, "b": units * 0.495}
        return sample_ratio(counts, {"a": 1, "b": 1}, alpha=0.001).mismatch

    assert not mismatch(50_000)
    assert mismatch(400_000)


def test_duplication_halves_the_evidence() -> None:
    counts, planned = {"a": 52_500, "b": 47_500}, {"a": 1, "b": 1}
    once = sample_ratio(counts, planned, alpha=0.001)
    twice = sample_ratio(counts, planned, alpha=0.001, duplication=2)
    halved = sample_ratio({k: v / 2 for k, v in counts.items()}, planned, alpha=0.001)
    assert twice.log_bayes_factor == pytest.approx(halved.log_bayes_factor)
    assert twice.units == 50_000
    assert twice.counts == once.counts
    assert 0.45 < twice.log_bayes_factor / once.log_bayes_factor < 0.5


def test_the_bayes_factor_is_the_running_product_of_the_mixture_predictions() -> None:
    # The Dirichlet mixture predicts the next unit's variant as a Polya urn does; the Bayes
    # factor of a sequence is the product of those predictions over the planned shares.
    planned = {"a": 0.6, "b": 0.3, "c": 0.1}
    sequence = "aabacbbaacbbbbaaca"
    weight = 50.0
    seen = dict.fromkeys(planned, 0)
    log_bf = 0.0
    for i, variant in enumerate(sequence):
        log_bf += math.log((weight * planned[variant] + seen[variant]) / (weight + i))
        log_bf -= math.log(planned[variant])
        seen[variant] += 1
    srm = sample_ratio(seen, planned, alpha=0.05, concentration=weight)
    assert srm.log_bayes_factor == pytest.approx(log_bf, rel=1e-9)


@pytest.mark.parametrize("share", [0.5, 0.3, 0.05])
def test_the_bayes_factor_has_mean_one_under_the_plan(share: float) -> None:
    # A test martingale starts at 1 and keeps its mean: E[BF_n] = 1 at every n, so by Ville's
    # inequality it exceeds 1/alpha with probability at most alpha.
    from scipy import stats as scipy_stats

    for n in (1, 7, 40):
        k = np.arange(n + 1)
        weights = scipy_stats.binom.pmf(k, n, share)
        factors = [
            math.exp(
                sample_ratio(
                    {"a": int(x), "b": n - int(x)}, {"a": share, "b": 1 - share}, alpha=0.05
                ).log_bayes_factor
            )
            for x in k
        ]
        assert float(np.dot(weights, factors)) == pytest.approx(1.0, rel=1e-9)


def test_percent_or_fractions_and_variants_missing_from_one_side() -> None:
    counts = {"stable": 900, "candidate": 1100}
    by_percent = sample_ratio(counts, {"stable": 50, "candidate": 50}, alpha=0.05)
    by_fraction = sample_ratio(counts, {"stable": 0.5, "candidate": 0.5}, alpha=0.05)
    assert by_percent == by_fraction
    unplanned = sample_ratio({"stable": 10, "rogue": 1}, {"stable": 100}, alpha=0.05)
    assert unplanned.mismatch
    assert unplanned.p_value == 0.0
    assert unplanned.over == "rogue"
    silent = sample_ratio({"stable": 1000}, {"stable": 50, "candidate": 50}, alpha=0.05)
    assert silent.mismatch
    assert silent.short == "candidate"
    assert silent.counts == {"stable": 1000.0, "candidate": 0.0}


def test_one_variant_and_huge_counts_are_well_defined() -> None:
    alone = sample_ratio({"stable": 5_000}, {"stable": 1}, alpha=0.05)
    assert alone.log_bayes_factor == 0.0
    assert not alone.mismatch
    assert alone.short is None
    huge = sample_ratio({"a": 4e11, "b": 4e11 + 1e6}, {"a": 1, "b": 1}, alpha=0.05)
    assert math.isfinite(huge.log_bayes_factor)


@pytest.mark.parametrize(
    ("counts", "planned", "options"),
    [
        ({"a": 1}, {"a": 1}, {"alpha": 0.0}),
        ({"a": 1}, {"a": 1}, {"alpha": 1.0}),
        ({"a": 1}, {"a": 1}, {"alpha": 0.05, "duplication": 0.5}),
        ({"a": 1}, {"a": 1}, {"alpha": 0.05, "concentration": 0.0}),
        ({"a": -1}, {"a": 1}, {"alpha": 0.05}),
        ({"a": 1}, {"a": 0}, {"alpha": 0.05}),
        ({"a": 1}, {"a": -1, "b": 2}, {"alpha": 0.05}),
    ],
)
def test_nonsense_is_refused(counts, planned, options) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the messages are checked by eye)
        sample_ratio(counts, planned, **options)


# Moments, differences


def _pairs(shares: dict[str, float], rows: int) -> list[tuple[float, float]]:
    return [(VALUES[cell], round(rows * share)) for cell, share in shares.items()]


@pytest.mark.parametrize(
    ("candidate", "control", "alpha", "planned"),
    [
        (_pairs(SHARES, 5000), _pairs(SHARES, 4000), 0.05, 2000.0),
        (_pairs({"tp": 0.2, "fn": 0.0, "fp": 0.1, "tn": 0.7}, 300), _pairs(SHARES, 900), 0.01, 1e4),
        ([(120.0, 40)], [(120.0, 10), (0.0, 3)], 0.05, 50.0),  # no spread yet on one side
        ([(1.0, 0), (0.0, 0)], _pairs(SHARES, 10), 0.05, 50.0),  # no rows on one side
    ],
)
def test_the_difference_is_the_canarys_mean_difference(candidate, control, alpha, planned) -> None:
    ours = difference(
        Moments.of_values(candidate), Moments.of_values(control), alpha=alpha, planned=planned
    )
    theirs = canary.mean_difference(candidate, control, alpha=alpha, planned=planned)
    for a, b in zip(
        (ours.estimate, ours.low, ours.high),
        (theirs.estimate, theirs.low, theirs.high),
        strict=True,
    ):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12) or (math.isnan(a) and math.isnan(b))


def test_a_sample_with_no_spread_yet_is_not_certain() -> None:
    same = Moments.of_values([(120.0, 50), (0.0, 0)])
    assert same.mean == 120.0
    assert same.variance > 0
    assert Moments.of_share(0, 200).variance > 0
    assert Moments.of_share(200, 200).variance > 0


@pytest.mark.parametrize(("successes", "trials"), [(30, 100), (0, 50), (700, 1000)])
def test_a_share_is_the_canarys_proportion(successes: int, trials: int) -> None:
    control = Moments.of_share(40, 120)
    ours = difference(Moments.of_share(successes, trials), control, alpha=0.05, planned=500.0)
    theirs = canary.proportion_difference((successes, trials), (40, 120), alpha=0.05, planned=500.0)
    assert ours.estimate == pytest.approx(theirs.estimate)
    half = (ours.high - ours.low) / 2
    if theirs.low > -1 and theirs.high < 1:  # the canary clips a share's difference to [-1, 1]
        assert (theirs.high - theirs.low) / 2 == pytest.approx(half)
    assert Moments.of_share(0, 0).n == 0


def test_covariate_moments_from_cell_sums_are_those_of_the_rows() -> None:
    rng = np.random.default_rng(3)
    cells = rng.choice(4, size=3000, p=list(SHARES.values()))
    y = np.array(list(VALUES.values()))[cells]
    x = 0.02 * y + rng.normal(10, 2, size=y.size)
    has_x = rng.random(y.size) < 0.8
    sums = [
        Cell(
            value,
            float(np.sum(cells == i)),
            float(np.sum((cells == i) & has_x)),
            float(np.sum(x[(cells == i) & has_x])),
            float(np.sum(x[(cells == i) & has_x] ** 2)),
        )
        for i, value in enumerate(VALUES.values())
    ]
    moments = Moments.of_cells(sums)
    imputed = np.where(has_x, x, x[has_x].mean())  # rows without x count at its mean
    assert moments.n == y.size
    assert moments.mean == pytest.approx(y.mean())
    assert moments.mean_x == pytest.approx(imputed.mean())
    assert moments.var_x == pytest.approx(imputed.var())
    assert moments.cov_xy == pytest.approx(np.mean((imputed - imputed.mean()) * (y - y.mean())))
    plain = Moments.of_values(_pairs(SHARES, 100))
    assert not plain.has_covariate
    assert moments.has_covariate


# CUPED


def _rows(rng: np.random.Generator, n: int, rho: float, shift: float = 0.0) -> list[Cell]:
    """A variant's cells with a covariate correlated at `rho` with the KPI (x from the cell
    the row would have had in the control, so the candidate's shift leaves x alone)."""
    values = np.array(list(VALUES.values()))
    cells = rng.choice(4, size=n, p=list(SHARES.values()))
    base = values[cells]
    x = rho * (base - base.mean()) / base.std() + math.sqrt(1 - rho**2) * rng.normal(size=n)
    moved = (cells == 1) & (rng.random(n) < shift)  # false negatives turned true positives
    cells = np.where(moved, 0, cells)
    return [
        Cell(
            float(v),
            float(np.sum(cells == i)),
            float(np.sum(cells == i)),
            float(np.sum(x[cells == i])),
            float(np.sum(x[cells == i] ** 2)),
        )
        for i, v in enumerate(values)
    ]


def test_cuped_with_the_kpi_itself_removes_all_its_variance() -> None:
    cells = [
        Cell(v, 1000 * s, 1000 * s, v * 1000 * s, v * v * 1000 * s)
        for v, s in zip(VALUES.values(), SHARES.values(), strict=True)
    ]
    other = [
        Cell(c.value, c.rows * 1.1, c.rows_with_x * 1.1, c.sum_x * 1.1, c.sum_x2 * 1.1)
        for c in cells
    ]
    result = cuped({"stable": Moments.of_cells(cells), "candidate": Moments.of_cells(other)})
    assert result.applied
    assert result.theta == pytest.approx(1.0)
    assert result.reduction > 0.99


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.5, 0.7])
def test_cuped_removes_about_rho_squared(rho: float) -> None:
    rng = np.random.default_rng(11)
    samples = {
        "stable": Moments.of_cells(_rows(rng, 40_000, rho)),
        "candidate": Moments.of_cells(_rows(rng, 40_000, rho)),
    }
    result = cuped(samples)
    assert result.applied
    assert result.reduction == pytest.approx(rho**2, abs=0.015)


def test_cuped_keeps_the_effect_and_removes_the_chance_gap_in_the_covariate() -> None:
    rng = np.random.default_rng(12)
    samples = {
        "stable": Moments.of_cells(_rows(rng, 40_000, 0.6)),
        "candidate": Moments.of_cells(_rows(rng, 40_000, 0.6, shift=0.3)),
    }
    result = cuped(samples)
    before = samples["candidate"].mean - samples["stable"].mean
    after = result.samples["candidate"].mean - result.samples["stable"].mean
    x_gap = samples["candidate"].mean_x - samples["stable"].mean_x
    assert after == pytest.approx(before - result.theta * x_gap)
    effect = 120 * SHARES["fn"] * 0.3
    assert abs(after - effect) < abs(before - effect) + 0.05
    assert after == pytest.approx(effect, abs=0.3)


def test_cuped_theta_is_the_pooled_regression_slope() -> None:
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(0, 1, 500), rng.normal(0.2, 1.5, 700)
    y1, y2 = (2 * x1 > 0).astype(float), (2 * x2 > 0.5).astype(float)

    def moments(x: np.ndarray, y: np.ndarray) -> Moments:
        return Moments.of_cells(
            [
                Cell(
                    v,
                    float(np.sum(y == v)),
                    float(np.sum(y == v)),
                    float(np.sum(x[y == v])),
                    float(np.sum(x[y == v] ** 2)),
                )
                for v in (0.0, 1.0)
            ]
        )

    result = cuped({"a": moments(x1, y1), "b": moments(x2, y2)})
    x, y = np.concatenate([x1, x2]), np.concatenate([y1, y2])
    assert result.theta == pytest.approx(np.cov(x, y, bias=True)[0, 1] / x.var())


def test_cuped_says_why_it_did_not_apply() -> None:
    plain = Moments.of_values(_pairs(SHARES, 100))
    with_x = Moments.of_cells([Cell(1.0, 10, 10, 50.0, 250.0), Cell(0.0, 10, 10, 50.0, 250.0)])
    cases = {
        "no covariate for candidate": {"stable": with_x, "candidate": plain},
        "the covariate does not vary": {"stable": with_x, "candidate": with_x},
        "no rows yet": {"stable": Moments.of_values([]), "candidate": Moments.of_values([])},
    }
    for reason, samples in cases.items():
        result = cuped(samples)
        assert not result.applied
        assert result.reason == reason
        assert result.samples == samples
        assert result.reduction == 0.0


# Alpha, guardrails


@pytest.mark.parametrize(("candidates", "each"), [(0, 0.06), (1, 0.06), (2, 0.02), (3, 0.01)])
def test_alpha_is_split_over_every_comparison(candidates: int, each: float) -> None:
    assert split_alpha(0.06, candidates) == pytest.approx(each)


@pytest.mark.parametrize(
    ("low", "high", "higher_is_better", "outcome"),
    [
        (-0.01, 0.03, True, "pass"),
        (-0.03, 0.01, True, "inconclusive"),
        (-0.05, -0.01, True, "inconclusive"),
        (-0.08, -0.03, True, "breached"),
        (-0.09, -0.021, True, "breached"),
        (-0.03, 0.01, False, "pass"),
        (-0.01, 0.03, False, "inconclusive"),
        (0.021, 0.09, False, "breached"),
        (-math.inf, math.inf, True, "inconclusive"),
    ],
)
def test_non_inferiority(low: float, high: float, higher_is_better: bool, outcome: str) -> None:
    interval = canary.Interval((low + high) / 2 if math.isfinite(low) else math.nan, low, high)
    assert non_inferiority(interval, 0.02, higher_is_better=higher_is_better) == outcome


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        non_inferiority(canary.Interval(0, -1, 1), -0.1, higher_is_better=True)


# Plans


def test_the_planned_units_grow_as_one_over_the_effect_squared() -> None:
    wide, narrow = (
        plan(4.0, 42.3, alpha=0.05, power=0.8, shares={"stable": 1, "candidate": 1}, candidates=1),
        plan(1.0, 42.3, alpha=0.05, power=0.8, shares={"stable": 1, "candidate": 1}, candidates=1),
    )
    assert narrow.units_total / wide.units_total == pytest.approx(16, rel=0.01)


def test_always_valid_costs_more_units_than_one_look_and_the_fixed_horizon_is_textbook() -> None:
    result = plan(
        2.0, 42.3, alpha=0.05, power=0.8, shares={"stable": 1, "candidate": 1}, candidates=1
    )
    textbook = 2 * (1.959964 + 0.841621) ** 2 * 42.3**2 / 2.0**2
    assert result.fixed_horizon["stable"] == pytest.approx(textbook, abs=1)
    assert result.fixed_horizon_total == pytest.approx(2 * textbook, abs=2)
    assert 1.3 < result.price < 2.5
    assert result.units["stable"] == result.units["candidate"] == result.units_total / 2


def test_at_the_planned_units_the_interval_detects_the_effect_with_the_power() -> None:
    result = plan(
        2.0, 42.3, alpha=0.05, power=0.8, shares={"stable": 70, "a": 15, "b": 15}, candidates=2
    )
    assert result.alpha == pytest.approx(0.05 / 3)
    n_stable, n_a = result.units["stable"], result.units["a"]
    samples = canary.effective_samples(n_a, n_stable)
    assert result.planned["a"] == pytest.approx(samples)
    se = 42.3 * math.sqrt(1 / n_a + 1 / n_stable)
    reach = (canary.radius(1, samples, result.alpha, samples) + 0.841621) * se
    assert reach == pytest.approx(2.0, rel=1e-3)
    assert reach <= 2.0


@pytest.mark.parametrize(
    "options",
    [
        {"alpha": 0.0},
        {"power": 1.0},
        {"shares": {"stable": 100}},
        {"shares": {"a": 1, "b": 1}},
        {"shares": {"stable": 1, "candidate": 0}},
    ],
)
def test_a_plan_needs_sensible_inputs(options) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        plan(
            2.0,
            42.3,
            **{
                **{"alpha": 0.05, "power": 0.8, "shares": {"stable": 1, "c": 1}, "candidates": 1},
                **options,
            },
        )
    with pytest.raises(ValueError, match="no spread"):
        plan(2.0, 0.0, alpha=0.05, power=0.8, shares={"stable": 1, "c": 1}, candidates=1)


def test_standard_deviations_from_reference_rates() -> None:
    mean = 0.14 * 120 - 0.08 * 15
    expected = math.sqrt(0.14 * 120**2 + 0.08 * 15**2 - mean**2)
    assert value_deviation(VALUES, SHARES) == pytest.approx(expected)
    assert value_deviation(VALUES, {k: 100 * v for k, v in SHARES.items()}) == pytest.approx(
        expected
    )
    assert share_deviation(0.7) == pytest.approx(math.sqrt(0.21))
    assert share_deviation(0.0) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        share_deviation(1.5)


@pytest.mark.parametrize(
    ("units", "per_day", "days"),
    [
        (1000, 100, 10.0),
        (0, 0, 0.0),
        (1000, 0, math.inf),
        (1000, -5, math.inf),
        (1000, math.nan, math.inf),
    ],
)
def test_days_at_traffic(units: float, per_day: float, days: float) -> None:
    assert days_needed(units, per_day) == days


# A/A with daily looks


def _ever_significant(seed: int, *, fixed: bool, looks: int = 28) -> bool:
    rng = np.random.default_rng(seed)
    daily = rng.multinomial(400, list(SHARES.values()), size=(looks, 2)).cumsum(axis=0)
    alpha = 0.05
    planned = 0.25 * 400 * looks / 2
    for day in range(looks):
        a, b = (
            Moments.of_values(list(zip(VALUES.values(), map(float, daily[day, v]), strict=True)))
            for v in (0, 1)
        )
        if fixed:  # the z-test of one look, re-run every day
            half = 1.959964 * math.sqrt(a.variance / a.n + b.variance / b.n)
            interval = canary.Interval(
                a.mean - b.mean, a.mean - b.mean - half, a.mean - b.mean + half
            )
        else:
            interval = difference(a, b, alpha=alpha, planned=planned)
        if interval.low > 0 or interval.high < 0:
            return True
    return False


def test_an_aa_experiment_looked_at_daily_stays_under_alpha() -> None:
    runs = 300
    always_valid = sum(_ever_significant(seed, fixed=False) for seed in range(runs))
    band = wilson(always_valid, runs, z=1.96)
    assert band.low <= 0.05, f"{always_valid} of {runs} A/A runs found a difference"
    # The same looks with a fixed-horizon test: the check can fail, and this one does.
    naive = sum(_ever_significant(seed, fixed=True) for seed in range(runs))
    assert wilson(naive, runs, z=1.96).low > 0.05, f"{naive} of {runs}"

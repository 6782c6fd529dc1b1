"""The statistics around the gates: intervals, decisions, and the paired bootstrap."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from sklearn import metrics as skm

from modelops.gates import bootstrap
from modelops.statistics import (
    RARE,
    Interval,
    auc_interval,
    category_table,
    chi_square_reach,
    cramers_v,
    cramers_v_critical,
    decide_at_least,
    decide_at_most,
    difference,
    ks_interval,
    ks_rows_needed,
    leans_beyond_limit,
    rows_to_show_rate_below,
    wilson,
    z_value,
)

Z95 = z_value(0.95)


def test_wilson_matches_the_textbook_values() -> None:
    # 0 of 30: upper bound 3.84/33.84 = 0.1135 (the Wilson "rule of three" analogue).
    none = wilson(0, 30, z=Z95)
    assert none.low == 0.0
    assert none.high == pytest.approx(0.1135, abs=1e-3)
    half = wilson(50, 100, z=Z95)
    assert (half.low, half.high) == pytest.approx((0.4038, 0.5962), abs=1e-3)


def test_a_rate_is_decided_only_when_its_interval_is_on_one_side() -> None:
    assert decide_at_most(wilson(0, 1000, z=Z95), 0.05) == "pass"
    assert decide_at_most(wilson(300, 1000, z=Z95), 0.05) == "fail"
    assert decide_at_most(wilson(2, 30, z=Z95), 0.05) == "inconclusive", "30 rows cannot tell"
    assert decide_at_least(Interval(0.8, 0.75, 0.85), 0.7) == "pass"
    assert decide_at_least(Interval(0.6, 0.5, 0.65), 0.7) == "fail"
    assert decide_at_least(Interval(0.7, 0.6, 0.8), 0.7) == "inconclusive"


def test_an_undecided_interval_leans_toward_failing_when_its_estimate_is_beyond_the_limit() -> None:
    # The leak of the small public dataset: PPS 0.958 [0.860, 0.989] against 0.9.
    leak = Interval(0.958, 0.860, 0.989)
    assert decide_at_most(leak, 0.9) == "inconclusive"
    assert leans_beyond_limit(leak, 0.9, at_most=True)
    assert not leans_beyond_limit(Interval(0.85, 0.7, 0.95), 0.9, at_most=True)
    assert not leans_beyond_limit(Interval(0.99, 0.95, 1.0), 0.9, at_most=True), "a decided fail"
    assert leans_beyond_limit(Interval(0.65, 0.55, 0.75), 0.7, at_most=False)
    assert not leans_beyond_limit(Interval(0.75, 0.65, 0.85), 0.7, at_most=False)


def test_rows_needed_is_the_smallest_size_that_shows_a_rate_under_a_limit() -> None:
    needed = rows_to_show_rate_below(0.0, 0.05, z=Z95)
    assert needed is not None
    assert wilson(0, needed, z=Z95).high <= 0.05 < wilson(0, needed - 1, z=Z95).high
    assert rows_to_show_rate_below(0.06, 0.05, z=Z95) is None


def test_more_simultaneous_tests_widen_each_interval() -> None:
    assert z_value(0.95, tests=10) > z_value(0.95)


def test_the_ks_interval_shrinks_with_rows_and_the_rows_needed_reach_the_limit() -> None:
    small = ks_interval(0.1, 24, 6, confidence=0.95)
    large = ks_interval(0.1, 24_000, 6_000, confidence=0.95)
    assert small.high - small.low > large.high - large.low
    needed = ks_rows_needed(0.2, share=0.8, confidence=0.95)
    assert needed is not None, "a limit above the observed distance is reachable"
    at_needed = ks_interval(0.0, int(needed * 0.8), int(needed * 0.2), confidence=0.95)
    assert at_needed.high <= 0.2 + 1e-3


def test_cramers_v_critical_value_falls_with_rows() -> None:
    assert cramers_v_critical(30, 3, alpha=0.05) > cramers_v_critical(3000, 3, alpha=0.05)


def _deepchecks_cramers_v(first: np.ndarray, second: np.ndarray) -> float:
    """The function Deepchecks' FeatureDrift calls for a categorical feature, as the gate
    configures it (rare categories under 1 % pooled, no category limit)."""
    import warnings

    from deepchecks.utils.distribution.drift import cramers_v as deepchecks_cramers_v

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 where it has no number: nan
        try:
            return float(
                deepchecks_cramers_v(
                    first, second, min_category_size_ratio=0.01, sort_by="difference"
                )
            )
        except ValueError:  # SciPy refuses a table with an empty row
            return math.nan


def test_cramers_v_from_counts_is_deepchecks_on_the_same_two_samples() -> None:
    # Given 400 pairs of samples: 1 to 7 categories, 5 to 20,000 rows a side, shifted or not,
    # rare categories and ones the first sample never saw (pooled), two columns (Yates)
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(400):
        k = int(rng.integers(1, 8))
        labels = [f"c{i}" for i in range(k)]
        p = rng.dirichlet(np.ones(k) * rng.choice([0.3, 1.0, 5.0]))
        q = rng.dirichlet(np.ones(k) * rng.choice([0.3, 1.0, 5.0])) if rng.random() < 0.7 else p
        first = rng.choice(labels, size=int(rng.choice([5, 20, 100, 1000, 5000])), p=p)
        second = rng.choice(labels, size=int(rng.choice([5, 20, 100, 1000, 20_000])), p=q)
        if rng.random() < 0.3:
            second = np.concatenate([second, np.array(["new"] * int(rng.integers(1, 50)))])
        # When Deepchecks computes it on the rows and we on their counts
        theirs = _deepchecks_cramers_v(first, second)
        ours = cramers_v(category_table(Counter(first.tolist()), Counter(second.tolist())))
        # Then the numbers are the same (0 where Deepchecks has none: one column is left)
        if math.isnan(theirs):
            assert ours.value == 0.0
            continue
        assert ours.value == pytest.approx(theirs, abs=1e-7), (Counter(first), Counter(second))
        compared += 1
    assert compared > 350


def test_rare_categories_are_pooled_by_the_first_samples_shares() -> None:
    table = category_table(
        {"a": 600, "b": 395, "c": 5}, {"a": 10, "b": 10, "c": 50, "new": 30}, pooled=("b",)
    )
    # c is under 1 % of the first sample, new never seen there, b pooled by the caller
    assert table.labels == ("a", RARE)
    assert table.first == (600.0, 400.0)
    assert table.second == (10.0, 90.0)
    quiet = category_table({"a": 995, "c": 5}, {"a": 999, "c": 1})
    assert quiet.labels == ("a",), "a pooled column under 1 % on both sides is dropped"


def test_cramers_v_reads_the_same_at_any_window_size_and_its_interval_narrows() -> None:
    # Given a category going from 28 % to 80 % of the rows, 16,000 reference rows
    reference = {"x": 4480.0, "y": 11_520.0}
    widths, values = [], []
    for rows in (10**3, 10**4, 10**5, 10**6):
        found = cramers_v(category_table(reference, {"x": 0.8 * rows, "y": 0.2 * rows}))
        interval = found.interval(chi_square_reach(1, confidence=0.95))
        values.append(found.value)
        widths.append(interval.high - interval.low)
        assert interval.low <= found.value <= interval.high
    # Then the value is the population's, 0.52, at every size; the interval narrows to what the
    # reference rows allow
    assert values == pytest.approx([0.522] * 4, abs=2e-3)
    assert widths == sorted(widths, reverse=True)


def test_the_cramers_v_interval_covers_the_population_value() -> None:
    # Given shares shifted by a known amount, drawn 300 times at sizes as unequal as 300/30,000
    rng = np.random.default_rng(1)
    labels = ["a", "b", "c", "d"]
    p = np.array([0.35, 0.28, 0.25, 0.12])
    for q in (p, np.array([0.3, 0.36, 0.22, 0.12]), np.array([0.1, 0.8, 0.07, 0.03])):
        truth = math.sqrt(np.sum((p - q) ** 2 / (p + q)) / 2)
        for n1, n2 in ((500, 500), (16_000, 1000), (300, 30_000)):
            missed = 0
            for _ in range(300):
                found = cramers_v(
                    category_table(
                        dict(zip(labels, map(float, rng.multinomial(n1, p)), strict=True)),
                        dict(zip(labels, map(float, rng.multinomial(n2, q)), strict=True)),
                    )
                )
                interval = found.interval(chi_square_reach(found.columns - 1, confidence=0.95))
                missed += not interval.low <= truth <= interval.high
            # Then it misses at most the 5 % it promises (15 of 300; 25 has a chance under 1 %)
            assert missed <= 25, (truth, n1, n2, missed)


def test_a_column_expecting_too_few_rows_is_not_decidable() -> None:
    found = cramers_v(category_table({"a": 900, "b": 100}, {"a": 40, "b": 4}))
    assert not found.decidable
    assert found.sparsest == "b"
    assert found.expected == pytest.approx(44 * (0.1 + 4 / 44) / 2)
    assert cramers_v(category_table({"a": 900, "b": 100}, {"a": 400, "b": 40})).decidable


def test_the_auc_interval_contains_the_estimate_and_narrows_with_rows() -> None:
    small = auc_interval(0.8, 10, 40, z=Z95)
    large = auc_interval(0.8, 1000, 4000, z=Z95)
    assert small.low < large.low < 0.8 < large.high < small.high
    assert auc_interval(1.0, 10, 40, z=Z95).low < 1.0, "a perfect AUC on 50 rows is not certain"


def test_a_difference_of_intervals_is_wider_than_either() -> None:
    diff = difference(Interval(0.5, 0.4, 0.6), Interval(0.3, 0.2, 0.4))
    assert diff.estimate == pytest.approx(0.2)
    assert diff.low < 0.1
    assert diff.high > 0.3


# The bootstrap's metrics: equal to scikit-learn's on the rows each resample stands for --------


def _data(n: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(seed)
    truth = (generator.random(n) < 0.25).astype(float)
    score = np.clip(0.3 * truth + generator.random(n) * 0.7, 0, 1).round(2)  # with ties
    return truth, score


SKLEARN = {
    "roc_auc": lambda y, s, w, t: skm.roc_auc_score(y, s, sample_weight=w),
    "average_precision": lambda y, s, w, t: skm.average_precision_score(y, s, sample_weight=w),
    "log_loss": lambda y, s, w, t: skm.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15), sample_weight=w),
    "brier_score": lambda y, s, w, t: skm.brier_score_loss(y, s, sample_weight=w),
    "accuracy": lambda y, s, w, t: skm.accuracy_score(y, s >= t, sample_weight=w),
    "recall": lambda y, s, w, t: skm.recall_score(y, s >= t, sample_weight=w),
    "precision": lambda y, s, w, t: skm.precision_score(y, s >= t, sample_weight=w),
    "f1": lambda y, s, w, t: skm.f1_score(y, s >= t, sample_weight=w),
}


@pytest.mark.parametrize("name", sorted(bootstrap.METRICS))
def test_each_bootstrap_metric_equals_scikit_learn_with_the_same_weights(name: str) -> None:
    truth, score = _data()
    weights = np.random.default_rng(7).poisson(1.0, size=(5, len(truth))).astype(float)
    ours = bootstrap.METRICS[name](weights, truth, score, 0.5)
    theirs = [SKLEARN[name](truth, score, row, 0.5) for row in weights]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # float32 weights


def test_identical_models_differ_by_exactly_nothing() -> None:
    truth, score = _data()
    deltas = bootstrap.paired_differences(
        truth,
        score,
        score,
        ["roc_auc", "log_loss"],
        threshold=0.5,
        resamples=200,
        confidence=0.95,
        seed=0,
    )
    for found in deltas.values():
        assert (found.estimate, found.low, found.high) == (0.0, 0.0, 0.0)


def test_a_clearly_better_model_has_an_interval_above_zero_and_noise_straddles_it() -> None:
    truth, score = _data(2000)
    generator = np.random.default_rng(3)
    worse = np.clip(score + generator.normal(0, 0.4, len(score)), 0, 1)
    jitter = np.clip(score + generator.normal(0, 0.001, len(score)), 0, 1)
    better = bootstrap.paired_differences(
        truth, score, worse, ["roc_auc"], threshold=0.5, resamples=400, confidence=0.95, seed=0
    )["roc_auc"]
    assert better.low > 0.05
    noise = bootstrap.paired_differences(
        truth, score, jitter, ["roc_auc"], threshold=0.5, resamples=400, confidence=0.95, seed=0
    )["roc_auc"]
    assert noise.low < 0 < noise.high


def test_a_single_models_interval_covers_its_estimate() -> None:
    truth, score = _data(1000)
    found = bootstrap.interval(
        truth, score, "f1", threshold=0.5, resamples=300, confidence=0.95, seed=0
    )
    assert found.low < found.estimate < found.high
    assert found.estimate == pytest.approx(skm.f1_score(truth, score >= 0.5))

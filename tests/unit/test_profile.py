"""The reference profile: bins that agree with Prometheus' `le` buckets, shares, categories."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelops.telemetry.profile import (
    KNOWN_CATEGORIES,
    TOP_CATEGORIES,
    ReferenceProfile,
    bin_index,
    build_profile,
    quantile_cuts,
)


def _profile(train: pd.DataFrame, scores: np.ndarray | None = None) -> ReferenceProfile:
    numeric = [c for c in train.columns if pd.api.types.is_numeric_dtype(train[c])]
    return build_profile(
        train,
        numeric=numeric,
        categorical=[c for c in train.columns if c not in numeric],
        test_scores=np.linspace(0.0, 1.0, 101) if scores is None else scores,
        test_positive=(np.arange(101 if scores is None else len(scores)) % 3 == 0),
        threshold=0.5,
        expected={"roc_auc": 0.81234567, "recall": 0.5},
        positive_label="1",
    )


def test_a_value_on_a_cut_is_in_the_bin_below_it_as_in_an_le_bucket() -> None:
    cuts = (0.1, 0.5, 0.9)
    values = np.array([-1.0, 0.1, 0.10001, 0.5, 0.9, 0.95, np.inf])
    assert bin_index(cuts, values).tolist() == [0, 0, 1, 1, 2, 3, 3]


def test_deciles_give_ten_bins_of_a_tenth_each() -> None:
    rng = np.random.default_rng(0)
    profile = _profile(pd.DataFrame({"x": rng.normal(size=10_000)}))
    (x,) = profile.numeric
    assert len(x.cuts) == 9
    assert x.bins[0] == "b00"
    assert x.bins[-1] == "b09"
    assert sum(x.shares) == pytest.approx(1.0)
    assert all(share == pytest.approx(0.1, abs=0.002) for share in x.shares)
    assert x.missing == 0.0


def test_missing_values_are_their_own_rate_and_out_of_the_shares() -> None:
    x = pd.Series([1.0, 2.0, None, 3.0, None, 4.0, 5.0, 6.0, 7.0, 8.0])
    (profile,) = _profile(pd.DataFrame({"x": x})).numeric
    assert profile.missing == pytest.approx(0.2)
    assert sum(profile.shares) == pytest.approx(1.0)


def test_a_constant_or_empty_feature_has_one_bin() -> None:
    assert quantile_cuts(np.full(50, 3.0)) == ()
    assert quantile_cuts(np.array([np.nan, np.nan])) == ()
    (profile,) = _profile(pd.DataFrame({"x": np.full(50, 3.0)})).numeric
    assert profile.bins == ("b00",)
    assert profile.shares == (1.0,)


def test_a_few_distinct_values_give_as_many_bins_and_none_is_empty() -> None:
    (profile,) = _profile(pd.DataFrame({"x": [0, 1, 2] * 100})).numeric
    assert profile.cuts == (0.0, 1.0)
    assert profile.shares == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=1e-6)


def test_categories_name_the_top_ones_group_the_rest_and_bound_the_file() -> None:
    common = [f"c{i:02d}" for i in range(TOP_CATEGORIES)]
    rare = [f"r{i:04d}" for i in range(KNOWN_CATEGORIES + 50)]
    values = [v for v in common for _ in range(10)] + rare + [None] * 10
    (plan,) = _profile(pd.DataFrame({"plan": values})).categorical
    assert plan.categories == tuple(common), "most frequent first, ties by name"
    assert len(plan.other) == KNOWN_CATEGORIES - TOP_CATEGORIES, "past the bound: unseen"
    total = len(values) - 10
    assert plan.other_share == pytest.approx((KNOWN_CATEGORIES - TOP_CATEGORIES) / total, abs=1e-6)
    assert plan.missing == pytest.approx(10 / len(values), abs=1e-6)


def test_every_category_the_drift_gate_keeps_apart_is_named_past_the_top_ones() -> None:
    # Given 40 categories of 2.5 % each: the drift gate pools only those under 1 %
    values = [f"c{i:02d}" for i in range(40) for _ in range(25)] + ["rare"] * 5
    (plan,) = _profile(pd.DataFrame({"plan": values})).categorical
    # Then all 40 are named (more than the top 20), and only the rare one is `other`
    assert len(plan.categories) == 40 > TOP_CATEGORIES
    assert plan.other == ("rare",)


def test_the_score_profile_holds_the_positive_rate_at_the_threshold() -> None:
    scores = np.array([0.1] * 70 + [0.6] * 20 + [0.9] * 10)
    score = _profile(pd.DataFrame({"x": [1.0, 2.0]}), scores).score
    assert score.threshold == 0.5
    assert score.rows == 100
    assert score.positive_rate == pytest.approx(0.3)
    assert sum(score.shares) == pytest.approx(1.0)
    assert score.shares[bin_index(score.cuts, np.array([0.1]))[0]] == pytest.approx(0.7)


def test_the_file_round_trips_and_is_the_same_for_the_same_data() -> None:
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"x": rng.normal(size=500), "plan": rng.choice(["a", "b"], 500)})
    profile = _profile(train)
    again = _profile(train.copy())
    assert profile.to_json() == again.to_json(), "deterministic"
    assert ReferenceProfile.from_dict(json.loads(profile.to_json())) == profile
    assert profile.expected == {"recall": 0.5, "roc_auc": 0.812346}


def test_the_calibration_map_holds_each_score_bins_mean_and_positive_share() -> None:
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.0, 1.0, 20_000)
    truth = rng.uniform(0.0, 1.0, scores.size) < scores  # calibrated: P(positive | s) = s
    profile = build_profile(
        pd.DataFrame({"x": np.arange(10.0)}),
        numeric=["x"],
        categorical=[],
        test_scores=scores,
        test_positive=truth,
        threshold=0.5,
        expected={},
        positive_label="1",
    )
    score = profile.score
    assert len(score.mean_scores) == len(score.positive_shares) == len(score.shares)
    assert np.allclose(score.positive_shares, score.mean_scores, atol=0.04)
    assert score.mean_scores == tuple(sorted(score.mean_scores))
    assert ReferenceProfile.from_dict(json.loads(profile.to_json())) == profile

"""The judges decide from a check's numbers and the sample's size (pure, no Deepchecks run)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelops.data import Schema
from modelops.gates import judges, leakage
from modelops.gates.evidence import Evidence, Sizes
from modelops.gates.inputs import _order_auc, sizes
from modelops.params import DataGateParams, DriftGateParams, ModelGateParams
from modelops.statistics import youden_j


def _evidence(value: Any, params: Any, *, dataset: str = "train", **size: Any) -> Evidence:
    defaults = {"train_rows": 2400, "test_rows": 600, "train_positives": 480, "test_positives": 120}
    return Evidence(
        value=value,
        dataset=dataset,
        sizes=Sizes(**{**defaults, **size}),
        params=params,
        confidence=0.95,
        resamples=200,
        seed=0,
        threshold=0.5,
    )


@pytest.mark.parametrize(
    ("ratio", "rows", "decision"),
    [
        (0.0, 2400, "pass"),
        (0.2, 2400, "fail"),
        (0.0, 24, "inconclusive"),
        (0.08, 60, "inconclusive"),
    ],
)
def test_duplicates_are_decided_by_their_interval_not_their_point(
    ratio: float, rows: int, decision: str
) -> None:
    (verdict,) = judges.duplicates(_evidence(ratio, DataGateParams(), train_rows=rows))
    assert verdict.decision == decision, verdict
    if decision == "inconclusive":
        assert verdict.reason.startswith(f"inconclusive: {rows} rows cannot show")
        assert "would" in verdict.reason


def test_columns_share_the_error_rate_and_the_worst_is_named() -> None:
    shares = pd.DataFrame({"Percent of nulls in sample": {"a": 0.0, "b": 0.9, "c": 0.01}})
    (verdict,) = judges.nulls(_evidence(shares, DataGateParams()))
    assert verdict.decision == "fail"
    assert verdict.value.startswith("'b': 2160 of 2400 rows null")


def test_a_category_missing_from_a_small_train_set_by_chance_is_allowed_for() -> None:
    table = pd.DataFrame({"Ratio of New Categories": {"plan": 0.02}})
    params = DriftGateParams(max_new_category_ratio=0.01)
    # 2% of test rows bring a category never seen in train: a defect with a complete train set,
    # but expected when a tenth of the train rows hold values seen once (Good-Turing).
    strict = judges.new_categories(_evidence(table, params, singletons={"plan": 0}))[0]
    lenient = judges.new_categories(_evidence(table, params, singletons={"plan": 240}))[0]
    assert strict.decision in {"fail", "inconclusive"}
    assert lenient.decision == "pass", lenient


def test_drift_needs_enough_rows_to_tell_a_drift_of_the_limit_from_none() -> None:
    value = {"x": {"Drift score": 0.05, "Method": "Kolmogorov-Smirnov"}}
    small = judges.feature_drift(_evidence(value, DriftGateParams(), train_rows=24, test_rows=6))[0]
    large = judges.feature_drift(
        _evidence(value, DriftGateParams(), train_rows=24000, test_rows=6000)
    )[0]
    shifted = judges.feature_drift(
        _evidence({"x": {"Drift score": 0.6, "Method": "Kolmogorov-Smirnov"}}, DriftGateParams())
    )[0]
    assert (small.decision, large.decision, shifted.decision) == ("inconclusive", "pass", "fail")
    assert "rows in all would" in small.reason


def test_an_id_handed_out_in_label_order_predicts_the_label() -> None:
    frame = pd.DataFrame({"id": np.arange(1000), "y": (np.arange(1000) >= 800).astype(int)})
    assert _order_auc(frame["id"], frame["y"] == 1) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert _order_auc(pd.Series(rng.permutation(1000)), frame["y"] == 1) == pytest.approx(
        0.5, abs=0.06
    )
    sorted_ids = leakage.identifier_leakage(
        _evidence({}, DriftGateParams(), order_auc={"id": 1.0}, train_rows=800, train_positives=160)
    )[0]
    random_ids = leakage.identifier_leakage(
        _evidence({}, DriftGateParams(), order_auc={"id": 0.5}, train_rows=800, train_positives=160)
    )[0]
    assert (sorted_ids.decision, random_ids.decision) == ("fail", "pass")


def test_a_leak_fails_on_its_estimate_at_any_size_naming_the_column_and_the_way_out() -> None:
    # A column copied from the label 97% of the time, 455 training rows: the PPS interval
    # reaches under the limit, but a leak does not wait for more data.
    pps = {"train": {"refund": 0.958, "tenure": 0.1}, "test": {"refund": 0.95}}
    alone, _, _ = leakage.label_correlation(
        _evidence(pps, DriftGateParams(), train_rows=455, test_rows=114, train_positives=150)
    )
    assert alone.decision == "fail", alone
    assert alone.value.startswith("'refund': PPS 0.958 [")
    assert "any sample size" in alone.reason
    assert "`gates.drift.trusted_features`" in alone.reason
    # ...and an estimate within the limit still needs its interval to pass.
    weaker = {"train": {"tenure": 0.85}, "test": {"tenure": 0.85}}
    unsure, _, _ = leakage.label_correlation(
        _evidence(weaker, DriftGateParams(), train_rows=455, test_rows=114, train_positives=150)
    )
    assert unsure.decision == "inconclusive", unsure
    # The id's order and rows shared by train and test fail on their estimate too.
    order = leakage.identifier_leakage(
        _evidence({}, DriftGateParams(), order_auc={"id": 0.7}, train_rows=60, train_positives=20)
    )[0]
    assert order.decision == "fail", order
    assert "'id'" in order.reason
    chance = leakage.identifier_leakage(
        _evidence({}, DriftGateParams(), order_auc={"id": 0.65}, train_rows=24, train_positives=7)
    )[0]
    assert chance.decision == "inconclusive", "0.3 by chance on 24 rows: the interval reaches 0"
    assert "any sample size" in order.reason
    (overlap,) = leakage.sample_overlap(
        _evidence({"ratio": 0.1}, DriftGateParams(), dataset="test", test_rows=40)
    )
    assert overlap.decision == "fail", overlap
    assert "deduplicate" in overlap.reason
    (few,) = judges.duplicates(_evidence(0.1, DataGateParams(), train_rows=40))
    assert few.decision == "inconclusive", "an ordinary defect still waits for its interval"
    assert few.leans_fail, "...and asks for a review"


def test_outliers_are_counted_on_the_rows_scored_not_on_deepchecks_1000_quantiles() -> None:
    # 214 test rows, 18 of them outlying: Deepchecks hands back 1,000 quantiles.
    probabilities = np.sort(np.r_[np.zeros(196), np.full(18, 0.95)])
    quantiles = np.quantile(probabilities, np.arange(1000) / 1000, method="higher")
    (verdict,) = judges.outliers(
        _evidence(quantiles, DataGateParams(), dataset="test", test_rows=214)
    )
    assert verdict.value.startswith("18 of 214 rows outlying"), verdict.value
    assert verdict.decision == "fail", "8.4% [5.4%, 12.9%] is beyond 2%"
    big = np.r_[np.zeros(9950), np.full(50, 0.95)]
    quantiles = np.quantile(big, np.arange(1000) / 1000, method="higher")
    (sampled,) = judges.outliers(_evidence(quantiles, DataGateParams(), train_rows=10_000))
    assert sampled.value.startswith("15 of 3000 rows"), "the check's own sample of 3,000"


def test_a_constant_column_fails_but_a_small_sample_of_a_varied_one_is_inconclusive() -> None:
    params = DataGateParams()
    constant = judges.single_value(
        _evidence({"a": 1}, params, distinct={"a": 1}, top_share={"a": 1.0}, train_rows=6)
    )[0]
    lucky = judges.single_value(
        _evidence({"a": 1}, params, distinct={"a": 3}, top_share={"a": 0.7}, train_rows=6)
    )[0]
    broken = judges.single_value(
        _evidence({"a": 1}, params, distinct={"a": 3}, top_share={"a": 0.7}, train_rows=600)
    )[0]
    assert (constant.decision, lucky.decision, broken.decision) == ("fail", "inconclusive", "fail")


def test_a_weak_segment_needs_its_minimum_size_and_a_confident_drop() -> None:
    params = ModelGateParams(min_segment_rows=100)

    def segments(*rows: tuple[float, int]) -> dict[str, Any]:
        table = pd.DataFrame(
            [
                {
                    "Accuracy Score": score,
                    "Feature1": "x",
                    "Feature1 Range": (0, 1),
                    "Feature2": "",
                    "Feature2 Range": None,
                    "% of Data": 1.0,
                    "Samples in Segment": list(range(size)),
                }
                for score, size in rows
            ]
        )
        return {"weak_segments_list": table, "avg_score": 0.8}

    tiny = judges.weak_segments(_evidence(segments((0.1, 30)), params, dataset="test"))[0]
    weak = judges.weak_segments(_evidence(segments((0.3, 400)), params, dataset="test"))[0]
    fine = judges.weak_segments(_evidence(segments((0.75, 400)), params, dataset="test"))[0]
    assert tiny.decision == "pass", "a 30-row segment is never called weak"
    assert weak.decision == "fail"
    assert fine.decision == "pass"
    assert judges.weak_segments_too_small(Sizes(100, 60, 20, 12), params) is not None


def test_sizes_count_what_the_judges_need() -> None:
    from modelops.data import Schema

    schema = Schema("y", "1", "0", ("c",), ("n",), id="id")
    frame = pd.DataFrame(
        {"id": range(10), "c": list("aabbbbbbbz"), "n": range(10), "y": ["1"] * 2 + ["0"] * 8}
    )
    found = sizes(frame, frame.head(4), schema, sample_rows=5)
    assert (found.train_rows, found.test_rows, found.train_positives) == (5, 4, 1)
    assert found.singletons == {"c": 1}
    assert found.distinct["c"] == 3
    assert found.order_auc["id"] == pytest.approx(0.0), "ids count down the positives"


def test_deepchecks_messages_name_params_yaml_keys_not_its_own_arguments() -> None:
    from modelops.gates.runner import _one_line

    said = _one_line(
        "WeakSegmentsPerformance was unable to train an error model to find weak segments. "
        "Try increasing n_samples or supply additional features."
    )
    assert "n_samples" not in said
    assert said.endswith("More rows would help.")
    assert "n_samples" not in _one_line("Not enough samples; raise n_samples")


def _copied_label(rows: int, share: float, noise: float, seed: int) -> pd.DataFrame:
    """A label at `share` positives, a legitimately strong feature, and a column equal to the
    label with a share `noise` of rows flipped."""
    rng = np.random.default_rng(seed)
    label = (rng.random(rows) < share).astype(int)
    flips = rng.random(rows) < noise
    return pd.DataFrame(
        {
            "strong": rng.normal(1.8 * label, 1.0),
            "plan": np.where(rng.random(rows) < 0.3 + 0.3 * label, "retail", "business"),
            "copied": np.where(flips, 1 - label, label),
            "y": label.astype(str),
        }
    )


def _separation_verdict(table: pd.DataFrame, *, trusted: tuple[str, ...] = ()) -> Any:
    schema = Schema("y", "1", "0", categorical=("plan",), numeric=("strong", "copied"))
    cut = int(len(table) * 0.8)
    found = sizes(table.iloc[:cut], table.iloc[cut:], schema, sample_rows=10_000)
    # The predictive power score reads about 0 for every feature of an imbalanced label.
    pps = {
        "train": dict.fromkeys(schema.features, 0.0),
        "test": dict.fromkeys(schema.features, 0.0),
    }
    return leakage.label_correlation(
        Evidence(pps, "train", found, DriftGateParams(), 0.95, 200, 0, 0.5, trusted=trusted)
    )[1]


@pytest.mark.parametrize("share", [0.5, 0.03])
def test_one_features_separation_reads_one_minus_twice_the_flips_at_any_balance(
    share: float,
) -> None:
    table = _copied_label(200_000, share, 0.05, seed=1)
    positive = (table["y"] == "1").to_numpy()
    assert youden_j(table["copied"].to_numpy(float), positive) == pytest.approx(0.90, abs=0.01)
    missing = table["strong"].where(~positive).to_numpy(float)  # missing exactly when positive
    assert youden_j(missing, positive) == 1.0


@pytest.mark.parametrize(
    ("share", "noise", "rows"),
    [(0.5, 0.01, 3_000), (0.5, 0.05, 3_000), (0.03, 0.01, 3_000), (0.03, 0.05, 30_000)],
)
def test_a_copied_label_blocks_at_any_class_balance(share: float, noise: float, rows: int) -> None:
    # A public credit-default table (3 % positives): a copy with 5 % of rows flipped took ROC
    # AUC from 0.938 to 0.997 and passed, its PPS about 0. (With 90 positives a 5 % copy reads
    # above 0.88 about 86 % of the time: benchmarks/results/leaks.md.)
    table = _copied_label(rows, share, noise, seed=2)
    verdict = _separation_verdict(table)
    assert verdict.decision == "fail", verdict
    assert verdict.value.startswith("'copied': J = max |TPR - FPR| ")
    assert float(verdict.value.split()[7]) == pytest.approx(1 - 2 * noise, abs=0.04)
    assert "any sample size" in verdict.reason
    assert "`gates.drift.trusted_features`" in verdict.reason
    assert _separation_verdict(table, trusted=("copied",)).decision != "fail"


@pytest.mark.parametrize("share", [0.5, 0.03])
def test_a_copy_as_noisy_as_a_strong_legitimate_feature_is_not_called_a_leak(share: float) -> None:
    # 10 % flipped separates with J 0.80: no single-feature statistic tells it from a feature
    # legitimately that strong (breast cancer's best reads 0.84).
    verdict = _separation_verdict(_copied_label(3_000, share, 0.10, seed=3))
    assert verdict.decision != "fail", verdict


@pytest.mark.parametrize("rows", [100, 300, 500, 3_000])
@pytest.mark.parametrize("share", [0.5, 0.03])
def test_clean_data_with_a_strong_feature_is_never_blocked_as_a_leak(
    rows: int, share: float
) -> None:
    for seed in range(5):
        table = _copied_label(rows, share, 0.5, seed=seed)  # half flipped: no information
        verdict = _separation_verdict(table)
        assert verdict.decision != "fail", (rows, seed, verdict)


def test_a_copied_label_as_text_blocks_and_an_id_like_category_does_not() -> None:
    table = _copied_label(3_000, 0.03, 0.01, seed=4)
    table["plan"] = np.where(table["copied"] == 1, "defaulted", "current")
    table = table.drop(columns="copied").assign(copied=0.0)
    verdict = _separation_verdict(table)
    assert verdict.decision == "fail", verdict
    assert "'plan'" in verdict.value
    # A category per row: each is scored by the other split, where it never occurs.
    table["plan"] = [f"row-{i}" for i in range(len(table))]
    assert _separation_verdict(table).decision != "fail"


def _too_good(score: np.ndarray, truth: np.ndarray, **separation: float) -> Any:
    found = Sizes(
        train_rows=0,
        test_rows=len(truth),
        train_positives=0,
        test_positives=int(truth.sum()),
        test_separation=separation,
    )
    table = pd.DataFrame({"Metric": ["roc_auc", "recall"], "Value": [0.99, 0.99]})
    evidence = Evidence(
        table,
        "test",
        found,
        ModelGateParams(),
        0.95,
        200,
        0,
        0.5,
        test_truth=truth.astype(float),
        test_score=score,
    )
    return judges.performance(evidence)[-1]


def test_a_perfect_model_is_too_good_to_be_true() -> None:
    rng = np.random.default_rng(5)
    truth = rng.random(4_000) < 0.2
    perfect = np.where(truth, rng.uniform(0.6, 1.0, 4_000), rng.uniform(0.0, 0.4, 4_000))
    verdict = _too_good(perfect, truth, tenure=0.4)
    assert verdict.decision == "fail", verdict
    assert verdict.reason.startswith("too good to be true")
    assert "`gates.drift.trusted_features`" in verdict.reason
    # On 114 rows a perfect score may be chance on an easy problem: a reviewer looks at it...
    small = _too_good(perfect[:114], truth[:114], tenure=0.4)
    assert small.decision == "inconclusive", small
    assert small.leans_fail
    # ...unless one feature alone separates the classes as well as the model: a leak.
    carried = _too_good(perfect[:114], truth[:114], refund=1.0)
    assert carried.decision == "fail", carried
    assert "'refund' alone" in carried.reason
    # An excellent, imperfect model is not a symptom (breast cancer: 0.95 to 0.99).
    errors = rng.random(4_000) < 0.03
    excellent = np.where(errors, 1 - perfect, perfect)
    assert _too_good(excellent, truth, refund=0.5).decision == "pass"
